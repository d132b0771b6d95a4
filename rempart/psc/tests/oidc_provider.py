"""A real OpenID Connect provider for the tests, standing in for Pro Santé Connect.

Built on Authlib's authorization server (authorization code grant, PKCE required, OpenID Connect with a
required nonce), served by werkzeug on a free loopback port in a thread of the test process. It has its
own RSA key, publishes it as a JWKS, signs ID tokens with it (RS256) and answers the userinfo endpoint
with PSC's claims (``SubjectNameID`` = ``8`` + RPPS, ``SubjectRefPro`` with the practice's FINESS).

Rempart talks to it over HTTP exactly as to PSC: discovery, the browser's redirect to ``/authorize``, the
back-channel token and userinfo calls, the JWKS. Nothing of Rempart's is mocked. What a test wants to go
wrong is asked of the provider: who authenticates at the "card reader" (``at_card``) with which
authentication level (``acr``), and one-shot alterations of the next ID token (``tamper``: expired, signed
with a key that is not in the JWKS, another nonce, no ``auth_time``…).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.grants.util import create_half_hash
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "rempart-test"
CLIENT_SECRET = "test-secret-" + "x" * 20


@dataclass
class Identity:
    """A professional as PSC knows them (the directory's RPPS, name, where they practise)."""

    rpps: str
    given_name: str = "Camille"
    family_name: str = "Martin"
    finess: str = ""
    acr: str = "eidas1"  # what the ID token will say about the means used

    @property
    def national_id(self) -> str:
        return "8" + self.rpps  # IdNat_PS of an RPPS holder

    @property
    def sub(self) -> str:
        return f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:{self.national_id}"  # PSC's form of ``sub``

    def userinfo(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "SubjectNameID": self.national_id,
            "preferred_username": self.national_id,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "SubjectRefPro": {
                "exercices": [
                    {
                        "codeProfession": "28",
                        "nomDexercice": self.family_name,
                        "prenomDexercice": self.given_name,
                        "activities": [{"numeroFinessSite": self.finess, "numeroSiretSite": ""}],
                    }
                ]
            },
        }


class _Client(ClientMixin):
    def __init__(self, redirect_uris: list[str]) -> None:
        self.redirect_uris = redirect_uris

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "scope_all"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    redirect_uri: str
    scope: str
    nonce: str
    identity: Identity
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    used: bool = False

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.identity.acr

    def get_amr(self) -> list[str]:
        return []


@dataclass
class TestProvider:
    """The provider, its users and what it was asked; ``start()`` serves it, ``stop()`` ends it."""

    __test__ = False  # not a test class, whatever its name

    redirect_uris: list[str] = field(default_factory=list)
    at_card: Identity | None = None  # who authenticates at the next /authorize
    tamper: dict[str, Any] = field(default_factory=dict)  # applied to the next ID token, then cleared
    userinfo_overrides: dict[str, Any] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    id_tokens: list[dict[str, Any]] = field(default_factory=list)  # claims of every ID token issued
    last_auth_time: int | None = None  # the provider's SSO session: when the person last authenticated

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "psc-test-1", "use": "sig", "alg": "RS256"})
        # Same kid, another key: what a forger without the provider's key would sign with.
        self.foreign_key = RSAKey.generate_key(
            2048, parameters={"kid": "psc-test-1", "use": "sig", "alg": "RS256"}
        )
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self.app = self._build_app()

    # --- serving -------------------------------------------------------------------------------------

    def start(self) -> TestProvider:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides) -> dict[str, Any]:
        """Rempart's REMPART_PSC for this provider."""
        config = {
            "issuer": self.issuer,
            "discovery_url": "",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_acr": ["eidas1"],
            "scope": ["openid", "scope_all"],
            "login_max_age": 600,
        }
        config.update(overrides)
        return config

    # --- what a browser does at the provider (for tests without a browser) ---------------------------

    def authenticate(self, authorize_url: str) -> str:
        """Follow Rempart's redirect to /authorize, approve as ``at_card``; return the callback URL."""
        page = requests.get(authorize_url, allow_redirects=False, timeout=5)
        assert page.status_code == 200, page.text
        query = urlsplit(authorize_url).query
        answer = requests.post(
            f"{self.issuer}/authorize?{query}", data={"approve": "1"}, allow_redirects=False, timeout=5
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # --- the server ----------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("psc-test-provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 300}
        provider = self

        def query_client(client_id: str):
            return _Client(provider.redirect_uris) if client_id == CLIENT_ID else None

        def save_token(token: dict, req) -> None:
            with provider._lock:
                provider._tokens[token["access_token"]] = req.user

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, req) -> None:
                payload = req.payload
                with provider._lock:
                    provider._codes[code] = _Code(
                        code=code,
                        redirect_uri=payload.redirect_uri,
                        scope=payload.scope,
                        nonce=payload.data.get("nonce", ""),
                        identity=req.user,
                        code_challenge=payload.data.get("code_challenge", ""),
                        code_challenge_method=payload.data.get("code_challenge_method", ""),
                        auth_time=provider.last_auth_time or int(time.time()),
                    )

            def query_authorization_code(self, code: str, client):
                found = provider._codes.get(code)
                return found if found is not None and not found.used else None

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                authorization_code.used = True  # single use

            def authenticate_user(self, authorization_code: _Code) -> Identity:
                return authorization_code.identity

        class OpenIDCodeExtension(OpenIDCode):
            def exists_nonce(self, nonce: str, req) -> bool:
                return any(c.nonce == nonce for c in provider._codes.values())

            def generate_user_info(self, user: Identity, scope: str) -> dict:
                return {"sub": user.sub}

            def encode_id_token(self, token: dict, req) -> str:
                return provider._id_token(token, req.authorization_code)

        server.register_grant(
            CodeGrant, [OpenIDCodeExtension(require_nonce=True), CodeChallenge(required=True)]
        )

        @app.get("/.well-known/openid-configuration")
        def discovery():
            base = provider.issuer
            return jsonify(
                {
                    "issuer": provider.tamper.pop("discovery_issuer", base),
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "userinfo_endpoint": f"{base}/userinfo",
                    "jwks_uri": f"{base}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "code_challenge_methods_supported": ["S256"],
                    "acr_values_supported": ["eidas1"],
                    "claims_supported": [
                        "sub",
                        "acr",
                        "auth_time",
                        "SubjectNameID",
                        "given_name",
                        "family_name",
                    ],
                }
            )

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            if request.method == "GET":
                provider.authorize_requests.append(request.args.to_dict())
                try:
                    server.get_consent_grant(end_user=provider.at_card)
                except Exception as error:  # an invalid request is shown, as a real provider would
                    return f"<h1>Requête refusée</h1><p>{type(error).__name__}</p>", 400
                return _LOGIN_PAGE.format(who=provider.at_card.national_id if provider.at_card else "?")
            if provider.at_card is None:
                return "<h1>Personne à la carte</h1>", 400
            grant = server.get_consent_grant(end_user=provider.at_card)
            if request.form.get("approve") != "1":
                return server.create_authorization_response(grant=grant, grant_user=None)
            provider.last_auth_time = int(time.time())
            return server.create_authorization_response(grant=grant, grant_user=provider.at_card)

        @app.post("/token")
        def issue_token():
            provider.token_requests.append(request.form.to_dict())
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo():
            bearer = request.headers.get("Authorization", "")
            identity = provider._tokens.get(bearer.removeprefix("Bearer ").strip())
            if not bearer.startswith("Bearer ") or identity is None:
                return jsonify({"error": "invalid_token"}), 401
            claims = {**identity.userinfo(), **provider.userinfo_overrides}
            if provider.tamper.pop("userinfo_jwt", False):
                signed = jwt.encode({"alg": "RS256", "kid": provider.key.kid}, claims, provider.key)
                return signed, 200, {"Content-Type": "application/jwt"}
            return jsonify(claims)

        return app

    def _id_token(self, token: dict, code: _Code) -> str:
        """Sign the ID token, with whatever ``tamper`` asked for this once."""
        tamper, self.tamper = self.tamper, {k: v for k, v in self.tamper.items() if k in _STICKY}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [CLIENT_ID],
            "sub": code.identity.sub,
            "iat": now,
            "exp": now + 300,
            "auth_time": code.auth_time,
            "nonce": code.nonce,
            "acr": code.identity.acr,
            "at_hash": create_half_hash(token["access_token"], "RS256").decode(),
        }
        if tamper.get("expired"):
            claims["iat"], claims["exp"] = now - 900, now - 600
        for name in ("nonce", "aud", "iss", "acr", "auth_time", "sub", "azp"):
            if name in tamper:
                claims[name] = tamper[name]
        for name in tamper.get("drop", ()):
            claims.pop(name, None)
        self.id_tokens.append(claims)
        key = self.foreign_key if tamper.get("foreign_key") else self.key
        header = {"alg": "RS256", "kid": key.kid}
        if tamper.get("alg_none"):
            import base64
            import json

            def part(data: dict) -> str:
                return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

            return f"{part({'alg': 'none'})}.{part(claims)}."
        return jwt.encode(header, claims, key)

    def code_verifier_sent(self) -> bool:
        return bool(self.token_requests) and bool(self.token_requests[-1].get("code_verifier"))


_STICKY = {"discovery_issuer"}  # read by discovery, not by the ID token

_LOGIN_PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect (test)</title></head>
<body><h1>Pro Santé Connect — fournisseur de test</h1>
<p>Identifiant national : <span id="who">{who}</span></p>
<form method="post"><input type="hidden" name="approve" value="1">
<button type="submit" id="approve">Valider avec ma e-CPS</button></form></body></html>"""


def callback_params(url: str) -> dict[str, str]:
    """``code`` and ``state`` (or ``error``) of a callback URL."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def main(argv: list[str] | None = None) -> None:
    """Serve the provider for the demo: ``python -m rempart.psc.tests.oidc_provider``.

    Whoever presses "Valider avec ma e-CPS" on its page is the professional named here. Not PSC: a local
    stand-in with a published client secret, for trying the flow on one's own machine only.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="A local stand-in for Pro Santé Connect (demo only).")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--rpps", default="10000000058", help="the professional at the card reader")
    parser.add_argument("--acr", default="eidas1", help="the level the ID token says (eidas0: not CPS/e-CPS)")
    parser.add_argument(
        "--rempart", default="http://127.0.0.1:8000", help="Rempart's address (REMPART_BASE_URL)"
    )
    args = parser.parse_args(argv)
    provider = TestProvider(redirect_uris=[args.rempart.rstrip("/") + "/accounts/psc/login/callback/"])
    provider.at_card = Identity(args.rpps, "Hugo", "Vendeur", acr=args.acr)
    provider._server = make_server("127.0.0.1", args.port, provider.app, threaded=True)
    provider.port = args.port
    print(
        f"Local Pro Santé Connect stand-in on {provider.issuer} (RPPS {args.rpps}, acr {args.acr}). Start Rempart with:"
    )
    print(
        f"  REMPART_PSC_ISSUER={provider.issuer} REMPART_PSC_CLIENT_ID={CLIENT_ID} REMPART_PSC_CLIENT_SECRET={CLIENT_SECRET}"
    )

    def stop(*_args) -> None:
        raise KeyboardInterrupt  # shutdown() from the serving thread itself would wait for ever

    signal.signal(signal.SIGTERM, stop)
    try:
        provider._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        provider._server.server_close()


if __name__ == "__main__":
    main()
