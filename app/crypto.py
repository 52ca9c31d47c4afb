"""Random tokens and their hashes, for e-mailed links, sessions and invitation codes; and
sealing, for the few secrets that must be read back.

Tokens carry 256 bits of randomness, so a plain SHA-256 is enough to store them: a stolen
table gives nothing that can be used, and a lookup by hash costs a microsecond.
"""

import base64
import functools
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Sealed values start with this; anything else is a value stored before sealing existed.
SEALED_PREFIX = "sealed.v1."


class Sealer:
    """Encrypts the few secrets the portal must be able to read back (token signing keys,
    staff's second-factor secrets) before they are stored, so that a database dump or backup
    alone cannot sign tokens or make codes.

    AES-256-GCM with a key derived (HKDF-SHA256) from PORTAL_SECRET_KEY, which lives outside
    the database. Each value is bound to what it belongs to (`context`, such as a key id), so
    a sealed value copied onto another row does not open there. Values sealed under a
    previous secret key (PORTAL_PREVIOUS_SECRET_KEYS) still open, and `stale` tells which to
    seal again under the current one.
    """

    def __init__(self, secret_key: str, previous: tuple[str, ...] = ()) -> None:
        self._aead = _aead(secret_key)
        self._previous = [_aead(key) for key in previous]

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, stored: str, context: str) -> str:
        """The plaintext; a value stored before sealing existed comes back as it is."""
        if not is_sealed(stored):
            return stored
        for aead in (self._aead, *self._previous):
            plaintext = _decrypt(aead, stored, context)
            if plaintext is not None:
                return plaintext
        raise SealError(
            "a sealed secret does not open: PORTAL_SECRET_KEY differs from the one it was"
            " sealed with, and PORTAL_PREVIOUS_SECRET_KEYS does not hold that one"
            " (see README, Production)"
        )

    def stale(self, stored: str, context: str) -> bool:
        """Whether the stored value should be sealed (again) under the current key."""
        return not is_sealed(stored) or _decrypt(self._aead, stored, context) is None

    def reseal(self, stored: str, context: str) -> str:
        return self.seal(self.open(stored, context), context)


def _decrypt(aead: AESGCM, stored: str, context: str) -> str | None:
    sealed = base64.urlsafe_b64decode(stored.removeprefix(SEALED_PREFIX))
    try:
        return aead.decrypt(sealed[:12], sealed[12:], context.encode()).decode()
    except InvalidTag:
        return None


def _aead(secret_key: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"partnerportaal sealed v1"
    ).derive(secret_key.encode())
    return AESGCM(key)


def sealer_of(settings: Settings) -> Sealer:
    """The sealer for PORTAL_SECRET_KEY and PORTAL_PREVIOUS_SECRET_KEYS."""
    return _sealer(settings.secret_key, settings.previous_secret_keys)


@functools.cache
def _sealer(secret_key: str, previous: tuple[str, ...]) -> Sealer:
    return Sealer(secret_key, previous)


class SealError(RuntimeError):
    pass


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)
