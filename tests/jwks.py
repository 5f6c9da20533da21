"""An OIDC issuer for the JWT tests: signing keys made here (cryptography), their JWKS and a discovery document
served over real HTTP on 127.0.0.1, and tokens signed with them.

    with Issuer() as issuer:
        token = issuer.token(llmgate_project="app")   # RS256, kid "rsa-1", valid for an hour
        issuer.rotate()                               # a new key; the old one leaves the JWKS
        issuer.down = True                            # the JWKS answers 503 (an outage)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

AUDIENCE = "llmgate"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # once: RSA keys are slow to make


def public_jwk(kid: str, key: PrivateKey, alg: str) -> dict[str, Any]:
    """The public half of `key` as a JWK, with its `kid`, `alg` and `use`."""
    if isinstance(key, rsa.RSAPrivateKey):
        data = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        data = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


class Issuer:
    """Keys by kid, the JWKS they make, and an HTTP server publishing it (and `/.well-known/openid-configuration`)."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[PrivateKey, str]] = {"rsa-1": (RSA_KEY, "RS256")}
        self.down = False
        """Answer 503 to every request (the issuer is unreachable)."""
        self.fetches = 0
        """JWKS documents served."""
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if issuer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url + "/", "jwks_uri": issuer.url + "/keys"}
                elif self.path == "/keys":
                    issuer.fetches += 1
                    body = issuer.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.iss = self.url + "/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Issuer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, key, alg) for kid, (key, alg) in self.keys.items()]}

    def add_key(self, kid: str, alg: str) -> None:
        key: PrivateKey = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else \
            ed25519.Ed25519PrivateKey.generate() if alg == "EdDSA" else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = (key, alg)

    def rotate(self, old: str, new: str, alg: str = "ES256") -> None:
        """Publish a new key and withdraw `old`."""
        self.add_key(new, alg)
        del self.keys[old]

    def token(self, kid: str = "rsa-1", *, key: PrivateKey | None = None, alg: str | None = None,
              exp_in_s: float = 3600, **claims: Any) -> str:
        """A token signed with the key `kid` (or `key`), with `iss`, `aud`, `sub`, `exp` and `claims` over them."""
        own, own_alg = self.keys.get(kid, (None, None))
        payload = {"iss": self.iss, "aud": AUDIENCE, "sub": "user-1", "iat": int(time.time()),
                   "exp": int(time.time() + exp_in_s), **claims}
        signing_key = key or own
        assert signing_key is not None, f"no key {kid!r}: pass `key`"
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, signing_key, algorithm=alg or own_alg,
                          headers={"kid": kid})
