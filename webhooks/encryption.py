"""Secrets at rest: Fernet with the keys of FIELD_ENCRYPTION_KEY (the first encrypts, all decrypt)."""

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.strip().encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _decrypt(token, tuple(settings.FIELD_ENCRYPTION_KEYS))


@lru_cache(maxsize=1024)
def _decrypt(token: str, keys: tuple[str, ...]) -> str:
    # A worker signs every delivery of an endpoint with the same secret: decrypting it each time (HMAC
    # check and AES) was 7% of a worker's CPU. Keyed by the ciphertext, so a new or rotated secret (a new
    # token) or a change of keys is never served stale; a process holds at most 1024 plaintexts.
    return _fernet(keys).decrypt(token.encode()).decode()
