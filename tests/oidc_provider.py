"""A real OpenID Connect provider on a loopback port, for single sign-on tests: authorization
code flow with PKCE, RS256-signed ID tokens, a JWKS and a userinfo endpoint. It signs in
whoever `claims` names."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID, CLIENT_SECRET, KEY_ID = "chatsite", "s3cret", "key-1"


class Provider:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims: dict = {}
        self.codes: dict[str, dict] = {}  # code -> what /authorize was asked
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.tokens_issued = 0
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def settings(self) -> dict:
        return {"OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.url}/authorize",
                "OIDC_OP_TOKEN_ENDPOINT": f"{self.url}/token",
                "OIDC_OP_USER_ENDPOINT": f"{self.url}/userinfo",
                "OIDC_OP_JWKS_ENDPOINT": f"{self.url}/jwks"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def id_token(self, asked: dict) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.url, "aud": CLIENT_ID, "sub": self.claims["sub"],
                           "iat": now, "exp": now + 300, "nonce": asked["nonce"][0],
                           **self.claims}, self.key, algorithm="RS256",
                          headers={"kid": KEY_ID})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict | None = None, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                if url.path == "/authorize":
                    asked = parse_qs(url.query)
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = asked
                    back = asked["redirect_uri"][0] + "?" + urlencode(
                        {"code": code, "state": asked["state"][0]})
                    self.reply(302, None, [("Location", back)])
                elif url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
                        provider.key.public_key()))
                    self.reply(200, {"keys": [{**jwk, "kid": KEY_ID, "alg": "RS256",
                                               "use": "sig"}]})
                elif url.path == "/userinfo":
                    if self.headers.get("Authorization") != "Bearer access-token":
                        self.reply(401, {"error": "invalid_token"})
                    else:
                        self.reply(200, provider.claims)
                else:
                    self.reply(404, {"error": "not_found"})

            def do_POST(self):  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                asked = provider.codes.pop(form.get("code", [""])[0], None)
                verifier = form.get("code_verifier", [""])[0].encode()
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if (asked is None or form.get("client_secret") != [CLIENT_SECRET]
                        or asked["code_challenge"][0] != challenge):
                    self.reply(400, {"error": "invalid_grant"})
                    return
                provider.tokens_issued += 1
                self.reply(200, {"access_token": "access-token", "token_type": "Bearer",
                                 "id_token": provider.id_token(asked)})

        return Handler
