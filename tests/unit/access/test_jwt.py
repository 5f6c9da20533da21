"""Bearer JWTs on /v1 and /manage (access/jwt.py, access/jwks.py): in process, against an issuer that serves its
JWKS over real HTTP on 127.0.0.1 (tests/jwks.py) with keys made by the test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from llmgate.pipeline.authenticate import authenticate
from tests.inprocess.access import MANAGE, TOKENS_ENV, chat, manage, until
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import reply_json
from tests.jwks import AUDIENCE, RSA_KEY, Issuer
from tests.unit.pipeline.test_authenticate import request_with


def jwt_config(issuer: Issuer, discovery: bool = False) -> str:
    jwks = "" if discovery else f'jwks_url = "{issuer.url}/keys"\n'
    return (f'[[auth.jwt]]\nissuer = "{issuer.iss}"\naudiences = ["{AUDIENCE}"]\n{jwks}'
            'algorithms = ["RS256", "ES256", "EdDSA"]\nleeway_s = 5\nproject_claim = "llmgate_project"\n'
            'models_claim = "llmgate_models"\nuser_claim = "email"\nadmin_claim = "llmgate_role"\n'
            'admin_value = "admin"\n')


def start(issuer: Issuer, discovery: bool = False, env: dict[str, str | None] | None = None) -> Gateway:
    return Gateway(config=jwt_config(issuer, discovery), env={**TOKENS_ENV, **(env or {})},
                   upstream=lambda _: reply_json({"id": "chatcmpl-1"}))


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as running:
        yield running


@pytest.fixture(scope="module")
def gw(issuer: Issuer) -> Iterator[Gateway]:
    with start(issuer) as gateway:
        manage(gateway, "POST", "/projects", json={"name": "app", "allowed_models": ["gpt-4o-mini", "gpt-4o"]})
        yield gateway


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_a_valid_token_is_accepted_and_names_its_project(gw: Gateway, issuer: Issuer) -> None:
    response = chat(gw, issuer.token(llmgate_project="app"))
    assert response.status_code == 200, response.text
    assert gw.sent[-1].key != issuer.token(llmgate_project="app")  # the JWT never goes upstream


def test_the_project_can_be_named_by_id(gw: Gateway, issuer: Issuer) -> None:
    project = next(p for p in manage(gw, "GET", "/projects").json() if p["name"] == "app")
    assert chat(gw, issuer.token(llmgate_project=project["id"])).status_code == 200


def test_the_exchange_names_project_and_end_user_never_the_jwt(gw: Gateway, issuer: Issuer) -> None:
    token = issuer.token(llmgate_project="app", email="ada@example.com")
    request = request_with((b"authorization", f"Bearer {token}".encode()))
    gw.run(authenticate(gw.services.authenticator, request, gw.services.auth_throttle))
    project = next(p for p in manage(gw, "GET", "/projects").json() if p["name"] == "app")
    exchange = request.exchange
    assert (exchange.project_id, exchange.token_id, exchange.end_user) == (project["id"], None, "ada@example.com")


def test_a_repeat_caller_is_answered_from_the_cache(gw: Gateway, issuer: Issuer) -> None:
    token = issuer.token(llmgate_project="app", jti="cached")
    assert chat(gw, token).status_code == 200
    auth = gw.services.authenticator
    assert auth.jwt is not None
    principal = auth.authenticate(token, time.time())  # no await: a dict lookup
    assert principal is not None and principal.kind == "jwt" and principal.entry is not None


@pytest.mark.parametrize(("claims", "code"), [
    ({"exp_in_s": -60}, "jwt_expired"),
    ({"aud": "someone-else"}, "jwt_wrong_audience"),
    ({"iss": "https://evil.example/"}, "jwt_wrong_issuer"),
    ({"llmgate_project": None}, "jwt_missing_project"),
    ({"llmgate_project": "no-such-project"}, "jwt_unknown_project"),
])
def test_refusals_say_why(gw: Gateway, issuer: Issuer, claims: dict[str, Any], code: str) -> None:
    response = chat(gw, issuer.token(**{"llmgate_project": "app", **claims}))
    assert (response.status_code, code_of(response)) == (401, code), response.text


def test_a_bad_signature_is_refused(gw: Gateway, issuer: Issuer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = chat(gw, issuer.token(key=other, llmgate_project="app"))
    assert (response.status_code, code_of(response)) == (401, "jwt_bad_signature")
    header, payload, signature = issuer.token(llmgate_project="app").split(".")  # a claim changed after signing
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["llmgate_project"] = "other"
    tampered = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    response = chat(gw, f"{header}.{tampered}.{signature}")
    assert (response.status_code, code_of(response)) == (401, "jwt_bad_signature")


def test_odd_header_and_claim_types_are_refused_not_crashed_on(gw: Gateway, issuer: Issuer) -> None:
    header = _b64(json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode())
    listed = _b64(json.dumps({"iss": [issuer.iss], "aud": AUDIENCE, "exp": 2**31}).encode())
    response = chat(gw, f"{header}.{listed}.c2ln")  # refused before the signature is looked at
    assert (response.status_code, code_of(response)) == (401, "jwt_wrong_issuer")
    claims = _b64(json.dumps({"iss": issuer.iss, "aud": AUDIENCE, "exp": 2**31, "llmgate_project": "app"}).encode())
    odd_kid = f"{_b64(json.dumps({'alg': 'RS256', 'kid': 7}).encode())}.{claims}.c2ln"
    response = chat(gw, odd_kid)
    assert (response.status_code, code_of(response)) == (401, "jwt_invalid")
    no_alg = _b64(json.dumps({"typ": "JWT"}).encode())
    response = chat(gw, f"{no_alg}.{claims}.c2ln")
    assert (response.status_code, code_of(response)) == (401, "jwt_alg_not_allowed")
    response = chat(gw, "eyJ%%%.bad.token")
    assert (response.status_code, code_of(response)) == (401, "jwt_invalid")


def test_alg_none_is_refused(gw: Gateway, issuer: Issuer) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"rsa-1"}').rstrip(b"=").decode()
    claims = {"iss": issuer.iss, "aud": AUDIENCE, "exp": 2**31, "llmgate_project": "app"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = chat(gw, f"{header}.{payload}.")
    assert (response.status_code, code_of(response)) == (401, "jwt_alg_not_allowed")


def test_hs256_signed_with_the_public_key_is_refused(gw: Gateway, issuer: Issuer) -> None:
    """The classic key-confusion attack: the public key (which anyone has) used as an HMAC secret."""
    public_pem = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": issuer.iss, "aud": AUDIENCE, "exp": 2**31, "llmgate_project": "app"}
    response = chat(gw, _hs256(claims, public_pem))
    assert (response.status_code, code_of(response)) == (401, "jwt_alg_not_allowed")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand: PyJWT refuses to sign with a PEM public key as an HMAC secret (rightly)."""
    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode()
    signing_input = f"{_b64(header)}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_models_claim_narrows_the_projects_models(gw: Gateway, issuer: Issuer) -> None:
    token = issuer.token(llmgate_project="app", llmgate_models=["gpt-4o-mini"])
    assert chat(gw, token, model="gpt-4o-mini").status_code == 200
    response = chat(gw, token, model="gpt-4o")
    assert (response.status_code, code_of(response)) == (403, "model_not_allowed")
    scoped = issuer.token(llmgate_project="app", llmgate_models="gpt-4o other-model")  # a scope-like string
    assert chat(gw, scoped, model="gpt-4o").status_code == 200
    assert chat(gw, scoped, model="other-model").status_code == 403  # not the project's


def test_a_project_change_applies_to_its_jwt_callers_at_once(issuer: Issuer) -> None:
    with start(issuer, env={"LLMGATE_TOKEN_CACHE_TTL_S": "3600"}) as gw:
        project = manage(gw, "POST", "/projects", json={"name": "moving", "allowed_models": ["gpt-4o"]}).json()
        token = issuer.token(llmgate_project="moving")
        assert chat(gw, token, model="gpt-4o").status_code == 200
        manage(gw, "PATCH", f"/projects/{project['id']}", json={"allowed_models": ["gpt-4o-mini"]})
        assert chat(gw, token, model="gpt-4o").status_code == 403
        manage(gw, "DELETE", f"/projects/{project['id']}")
        response = chat(gw, token, model="gpt-4o-mini")
        assert (response.status_code, code_of(response)) == (401, "jwt_unknown_project")


def test_a_steady_callers_project_is_reloaded_in_the_background(issuer: Issuer) -> None:
    """Past its TTL the project entry has been read again by the periodic write-back: the hot path still answers
    from memory (authenticate returns a principal, not None)."""
    env = {"LLMGATE_TOKEN_CACHE_TTL_S": "0.4", "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with start(issuer, env=env) as gw:
        manage(gw, "POST", "/projects", json={"name": "steady"})
        token = issuer.token(llmgate_project="steady")
        assert chat(gw, token).status_code == 200
        auth = gw.services.authenticator
        first = auth.authenticate(token, time.time())
        assert first is not None and first.entry is not None
        loaded_at = first.entry.loaded_at
        assert until(gw, lambda: first.entry is not None and first.entry.loaded_at > loaded_at + 0.4)
        assert auth.authenticate(token, time.time()) is not None


def test_the_management_api_takes_a_jwt_with_the_admin_claim(gw: Gateway, issuer: Issuer) -> None:
    admin = {"authorization": f"Bearer {issuer.token(llmgate_role='admin')}"}
    response = gw.get("/manage/projects", headers=admin, auth=False)
    assert response.status_code == 200 and any(p["name"] == "app" for p in response.json())
    roles = {"authorization": f"Bearer {issuer.token(llmgate_role=['reader', 'admin'])}"}
    assert gw.get("/manage/projects", headers=roles, auth=False).status_code == 200
    plain = {"authorization": f"Bearer {issuer.token(llmgate_project='app')}"}
    response = gw.get("/manage/projects", headers=plain, auth=False)
    assert (response.status_code, code_of(response)) == (403, "forbidden")
    expired = {"authorization": f"Bearer {issuer.token(llmgate_role='admin', exp_in_s=-60)}"}
    response = gw.get("/manage/projects", headers=expired, auth=False)
    assert (response.status_code, code_of(response)) == (401, "jwt_expired")
    assert gw.get("/manage/projects", headers=MANAGE, auth=False).status_code == 200  # the token still works


def test_an_admin_jwts_actions_are_audited_under_its_subject(gw: Gateway, issuer: Issuer) -> None:
    admin = {"authorization": f"Bearer {issuer.token(llmgate_role='admin', sub='ops-42')}"}
    made = gw.post("/manage/projects", json={"name": "by-jwt"}, headers=admin, auth=False)
    assert made.status_code == 201, made.text
    entries = manage(gw, "GET", f"/audit?target={made.json()['id']}").json()["data"]
    assert [(e["action"], e["actor"]) for e in entries] == [("project.create", "jwt:ops-42")]


def test_a_jwt_is_not_a_key_for_health_deployments(gw: Gateway, issuer: Issuer) -> None:
    headers = {"authorization": f"Bearer {issuer.token(llmgate_project='app')}"}
    assert gw.get("/health/deployments", headers=headers, auth=False).status_code == 401


def test_health_shows_the_issuers_keys(gw: Gateway, issuer: Issuer) -> None:
    assert gw.get("/health").json()["jwks"] == {issuer.iss: "ok"}


def test_rotation_without_restart_and_a_removed_key_is_refused() -> None:
    with Issuer() as issuer, start(issuer) as gw:
        manage(gw, "POST", "/projects", json={"name": "app"})
        old = issuer.token(llmgate_project="app")
        assert chat(gw, old).status_code == 200
        issuer.rotate("rsa-1", "ec-2", "ES256")
        gw.clock.advance(31)  # past the refresh interval
        new = issuer.token("ec-2", llmgate_project="app")
        assert chat(gw, new).status_code == 200  # unknown kid: one refresh finds it
        response = chat(gw, issuer.token("rsa-1", key=RSA_KEY, alg="RS256", llmgate_project="app"))
        assert (response.status_code, code_of(response)) == (401, "jwt_unknown_kid")
        response = chat(gw, old)  # verified before the rotation: forgotten when its key left the JWKS
        assert (response.status_code, code_of(response)) == (401, "jwt_unknown_kid")
        issuer.add_key("ed-3", "EdDSA")
        fetches = issuer.fetches
        response = chat(gw, issuer.token("ed-3", llmgate_project="app"))
        assert (response.status_code, code_of(response), issuer.fetches) == (401, "jwt_unknown_kid", fetches), \
            "a second unknown kid within 30 s must not fetch again"
        gw.clock.advance(31)
        assert chat(gw, issuer.token("ed-3", llmgate_project="app")).status_code == 200


def test_unknown_kids_arriving_together_fetch_once() -> None:
    with Issuer() as issuer, start(issuer) as gw:
        manage(gw, "POST", "/projects", json={"name": "app"})
        issuer.add_key("ec-9", "ES256")
        gw.clock.advance(31)
        fetches = issuer.fetches
        token = issuer.token("ec-9", llmgate_project="app")

        async def together() -> list[int]:
            responses = await asyncio.gather(*(gw.send("POST", "/v1/chat/completions", json={
                "model": "gpt-4o-mini", "messages": []}, headers={"authorization": f"Bearer {token}"}, auth=False)
                for _ in range(5)))
            return [r.status_code for r in responses]

        assert gw.run(together()) == [200] * 5
        assert issuer.fetches == fetches + 1


def test_a_jwks_outage_keeps_serving_with_the_cached_keys() -> None:
    with Issuer() as issuer, start(issuer, discovery=True) as gw:  # keys found by OIDC discovery
        manage(gw, "POST", "/projects", json={"name": "app"})
        assert chat(gw, issuer.token(llmgate_project="app")).status_code == 200
        issuer.down = True
        gw.clock.advance(31)
        response = chat(gw, issuer.token("unknown-kid", key=RSA_KEY, alg="RS256", llmgate_project="app"))
        assert (response.status_code, code_of(response)) == (401, "jwt_unknown_kid")  # the refresh failed
        assert chat(gw, issuer.token(llmgate_project="app", jti="fresh")).status_code == 200  # cached key
        status = gw.get("/health").json()["jwks"][issuer.iss]
        assert status.startswith("stale: ") and "503" in status
        assert "JWKS of" in gw.logs() and "unreachable" in gw.logs()
        issuer.down = False
        gw.clock.advance(31)
        chat(gw, issuer.token("unknown-kid", key=RSA_KEY, alg="RS256", llmgate_project="app"))
        assert gw.get("/health").json()["jwks"][issuer.iss] == "ok"


def test_an_issuer_down_at_start_is_fetched_when_a_token_comes() -> None:
    with Issuer() as issuer:
        issuer.down = True
        with start(issuer) as gw:
            assert gw.get("/health").json()["jwks"][issuer.iss].startswith("unavailable: ")
            manage(gw, "POST", "/projects", json={"name": "app"})
            issuer.down = False
            gw.clock.advance(31)
            assert chat(gw, issuer.token(llmgate_project="app")).status_code == 200


def test_jwt_issuers_close_an_otherwise_open_gateway() -> None:
    with Issuer() as issuer, Gateway(config=jwt_config(issuer), env={"LLMGATE_MASTER_KEY": None}) as gw:
        assert chat(gw, None).status_code == 401
        assert gw.get("/health").json()["access"] == "closed"
