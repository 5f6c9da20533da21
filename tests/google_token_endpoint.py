"""A local OAuth 2 token endpoint for service accounts, as Google's answers (RFC 7523's JWT-bearer grant), and the
key files that point at it: Vertex AI's access tokens in tests, with no network."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EMAIL = "llmgate-test@my-project.iam.gserviceaccount.com"
AUDIENCE = "https://oauth2.googleapis.com/token"
"""What a service account's assertion names as its audience (google-auth's, whatever the key's token_uri)."""


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class TokenEndpoint:
    """OAuth 2's JWT-bearer grant (RFC 7523) as Google's token endpoint answers it: the assertion's signature
    checked with the service account's public key; each token issued is remembered."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.issued: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.refuse = False
        """Answer every grant 400 invalid_grant (a key revoked)."""
        self.lifetime_s = 3599
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                status, body = endpoint.grant(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.refuse:
            return 400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"}
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        header, payload, signature = form["assertion"][0].split(".")
        try:
            self.public_key.verify(_b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        claims = json.loads(_b64(payload))
        self.assertions.append(claims)
        if claims["iss"] != EMAIL or claims["aud"] != AUDIENCE or "cloud-platform" not in claims["scope"]:
            return 400, {"error": "invalid_grant", "error_description": "Invalid claims."}
        token = "ya29." + secrets.token_hex(16)
        self.issued.add(token)
        return 200, {"access_token": token, "expires_in": self.lifetime_s, "token_type": "Bearer"}


def service_account(tmp_path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "my-project", "private_key_id": "k1",
                                "private_key": pem, "client_email": EMAIL, "client_id": "1",
                                "token_uri": token_uri}))
    return path
