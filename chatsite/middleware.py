"""A Content-Security-Policy for our pages: defence in depth for untrusted model output.

Model output is sanitized before it reaches the DOM; this policy is the second line: no
script but our own files, no remote images, styles or frames, no plugins, no framing.
The admin keeps Django's own behaviour.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # Google's search suggestion chips carry inline CSS
    # blob: the composer's thumbnails of files being attached (URLs only our scripts make).
    "img-src 'self' data: blob:",
    "media-src 'self' data:",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def _protect(request, response):
    if not request.path.startswith("/admin/"):
        response.headers.setdefault("Content-Security-Policy", POLICY)
    return response


class ContentSecurityPolicyMiddleware:
    """Works sync and async, so it adds no thread hop under daphne."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return _protect(request, self.get_response(request))

    async def __acall__(self, request):
        return _protect(request, await self.get_response(request))
