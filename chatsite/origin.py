"""The websocket's Origin check, as strict as Django's CSRF check: scheme, host and port.

Channels' AllowedHostsOriginValidator compares the host name only, so a page served from
http://localhost:9999 (any other program on the machine) could open our sockets.
"""

from collections import defaultdict
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


class SameOriginValidator:
    """Refuse a websocket whose Origin is not this site's own, or a CSRF_TRUSTED_ORIGINS one."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    headers = {name.lower(): value.decode("latin1") for name, value in scope.get("headers", ())}
    origin, host = headers.get(b"origin"), headers.get(b"host")
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return False
    if origin == f"{'https' if _is_secure(scope, headers) else 'http'}://{host}":
        return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    subdomains = defaultdict(list)  # as Django's CsrfViewMiddleware reads "https://*.example"
    for entry in trusted:
        if "*" in entry:
            parts = urlsplit(entry)
            subdomains[parts.scheme].append(parts.netloc.lstrip("*"))
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return any(is_same_domain(parts.netloc, allowed) for allowed in subdomains[parts.scheme])


def _allowed_hosts() -> list[str]:
    # As HttpRequest.get_host(): in DEBUG, an empty ALLOWED_HOSTS means the local names.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def _is_secure(scope: dict, headers: dict[bytes, str]) -> bool:
    """As HttpRequest.is_secure(): TLS here, or a trusted proxy's header saying it had TLS."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, expected = settings.SECURE_PROXY_SSL_HEADER
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        if header in headers:
            return headers[header].split(",")[0].strip() == expected
    return scope.get("scheme") in ("wss", "https")
