"""Standard Webhooks signing: webhook-id, webhook-timestamp, webhook-signature.

Two schemes, chosen per endpoint: `v1` (HMAC-SHA256 with a shared `whsec_` secret) and `v1a` (ed25519:
the platform signs with a `whsk_` private key and receivers verify with the `whpk_` public key it
publishes). Both sign `{msg_id}.{timestamp}.{body}`. A signing key's prefix says its scheme, so the
delivery code passes keys along without knowing which scheme an endpoint uses.
"""

import base64
import hashlib
import hmac
import json
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SCHEME_HMAC = "v1"
SCHEME_ED25519 = "v1a"
SCHEMES = (SCHEME_HMAC, SCHEME_ED25519)

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # the specification asks for 24 to 64 random bytes
# ed25519 keys as the specification serialises them: base64 of the 32-byte private key (RFC 8032's seed)
# and of the 32-byte public key.
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

_RAW = serialization.Encoding.Raw


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_generate(scheme: str) -> str:
    """A new signing key of the scheme: a whsec_ secret (v1) or a whsk_ private key (v1a)."""
    if scheme == SCHEME_HMAC:
        return secret_generate()
    if scheme == SCHEME_ED25519:
        raw = Ed25519PrivateKey.generate().private_bytes(_RAW, serialization.PrivateFormat.Raw,
                                                         serialization.NoEncryption())  # fmt: skip
        return PRIVATE_KEY_PREFIX + base64.b64encode(raw).decode()
    raise ValueError(f"unknown signature scheme {scheme!r}")


def key_scheme(key: str) -> str:
    return SCHEME_ED25519 if key.startswith(PRIVATE_KEY_PREFIX) else SCHEME_HMAC


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


@lru_cache(maxsize=1024)
def _private_key(key: str) -> Ed25519PrivateKey:
    # Loaded once per key and process: a worker signs every delivery of an endpoint with the same key.
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(key.removeprefix(PRIVATE_KEY_PREFIX)))


def public_key_bytes(key: str) -> bytes:
    """The raw 32-byte ed25519 public key of a whsk_ private key."""
    return _private_key(key).public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


def public_key(key: str) -> str:
    """The whpk_ public key of a whsk_ private key: what receivers verify v1a signatures with."""
    return PUBLIC_KEY_PREFIX + base64.b64encode(public_key_bytes(key)).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(public: str) -> dict:
    """A whpk_ public key as a JWK (RFC 8037 OKP), its kid the RFC 7638 thumbprint."""
    x = _b64url(base64.b64decode(public.removeprefix(PUBLIC_KEY_PREFIX)))
    # The thumbprint hashes the required members in lexicographic order, without whitespace.
    thumbprint = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature with a signing key: `v1,<HMAC>` for a whsec_ secret, `v1a,<ed25519>` for a whsk_ key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    if secret.startswith(PRIVATE_KEY_PREFIX):
        return "v1a," + base64.b64encode(_private_key(secret).sign(signed)).decode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers; during a rotation's grace period one signature per key, space-separated."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets_
        ),
    }
