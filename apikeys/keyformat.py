"""API key format and hashing: `plk_<env>_<lookup id><secret><checksum>`.

GitHub's scheme: a recognisable prefix (secret scanners match it) and a CRC32 checksum in base62 in
the last six characters, so a mistyped or made-up key is refused before any lookup. The lookup id
finds the record; only the SHA-256 of the whole key is stored. Keys carry ~190 bits of randomness,
so a fast hash is right here (a password hasher would cost hundreds of ms per request for nothing).
"""

import hashlib
import hmac
import secrets
import string
import zlib
from typing import NamedTuple

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
KEY_PREFIX = "plk"
ENVIRONMENTS = ("live", "test")
LOOKUP_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
BODY_LENGTH = LOOKUP_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH


class MalformedKey(ValueError):
    """Not one of our keys (wrong prefix, length, alphabet or checksum)."""


class ParsedKey(NamedTuple):
    environment: str
    lookup_id: str
    secret_hash: str

    @property
    def prefix(self) -> str:
        return f"{KEY_PREFIX}_{self.environment}_"


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode()), CHECKSUM_LENGTH)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def hashes_match(stored: str, presented: str) -> bool:
    return hmac.compare_digest(stored.encode(), presented.encode())


def generate_key(environment: str) -> tuple[str, ParsedKey]:
    """A new key and what is stored of it; the raw key is shown once and never stored."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown key environment {environment!r}")
    prefix = f"{KEY_PREFIX}_{environment}_"
    lookup_id = _random_base62(LOOKUP_ID_LENGTH)
    body = lookup_id + _random_base62(SECRET_LENGTH)
    raw_key = prefix + body + checksum(prefix + body)
    return raw_key, ParsedKey(environment=environment, lookup_id=lookup_id, secret_hash=hash_key(raw_key))


def parse_key(raw_key: str) -> ParsedKey:
    """Check prefix, length, alphabet and checksum; no lookup happens for a key that fails here."""
    parts = raw_key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or parts[1] not in ENVIRONMENTS:
        raise MalformedKey("unknown key prefix")
    body = parts[2]
    # isalnum() of an ASCII string is [0-9A-Za-z]: the base62 alphabet, checked without a regular expression.
    if len(body) != BODY_LENGTH or not (body.isascii() and body.isalnum()):
        raise MalformedKey("wrong key length or alphabet")
    prefix = f"{KEY_PREFIX}_{parts[1]}_"
    if not hmac.compare_digest(checksum(prefix + body[:-CHECKSUM_LENGTH]), body[-CHECKSUM_LENGTH:]):
        raise MalformedKey("checksum mismatch")
    return ParsedKey(environment=parts[1], lookup_id=body[:LOOKUP_ID_LENGTH], secret_hash=hash_key(raw_key))


def last_four(raw_key: str) -> str:
    return raw_key[-4:]
