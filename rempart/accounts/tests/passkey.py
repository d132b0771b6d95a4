"""A software passkey for tests over the Django test client: it registers as a browser would, and signs
the challenge of a page's WebAuthn prompt (user verified), so passkey step-up is tested without a browser."""

from __future__ import annotations

import hashlib
import json
import os
import re

from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.internal.auth import WebAuthn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData

JS_DATA = re.compile(r'<script id="js_data" type="application/json">(.*?)</script>', re.DOTALL)
FLAGS = AuthenticatorData.FLAG


class SoftPasskey:
    def __init__(self, rp_id: str = "testserver", origin: str = "http://testserver") -> None:
        self.rp_id, self.origin = rp_id, origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.counter = 0

    def _rp_hash(self) -> bytes:
        return hashlib.sha256(self.rp_id.encode()).digest()

    def enrol(self, user, name: str = "Clé de test") -> Authenticator:
        """Store the passkey as allauth does at the end of a registration ceremony."""
        public_key = ES256.from_cryptography_key(self.key.public_key())
        attested = AttestedCredentialData.create(bytes(16), self.credential_id, public_key)
        auth_data = AuthenticatorData.create(self._rp_hash(), FLAGS.UP | FLAGS.UV | FLAGS.AT, 0, attested)
        client_data = CollectedClientData.create("webauthn.create", os.urandom(32), self.origin)
        credential = {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "attestationObject": websafe_encode(AttestationObject.create("none", auth_data, {})),
            },
            "clientExtensionResults": {"credProps": {"rk": False}},
        }
        return WebAuthn.add(user, name, credential).instance

    def sign(self, page: str, *, verified: bool = True) -> str:
        """The credential field's value for the WebAuthn prompt rendered in ``page``."""
        options = json.loads(JS_DATA.search(page).group(1))["request_options"]["publicKey"]
        client_data = CollectedClientData.create(
            "webauthn.get", websafe_decode(options["challenge"]), self.origin
        )
        self.counter += 1
        flags = FLAGS.UP | (FLAGS.UV if verified else 0)
        auth_data = AuthenticatorData.create(self._rp_hash(), flags, self.counter)
        signature = self.key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": websafe_encode(self.credential_id),
                "rawId": websafe_encode(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": websafe_encode(client_data),
                    "authenticatorData": websafe_encode(auth_data),
                    "signature": websafe_encode(signature),
                },
                "clientExtensionResults": {},
            }
        )
