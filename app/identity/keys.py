"""Signing keys for access tokens: ES256, kept in PostgreSQL, rotated by `portal keys rotate`.

Private keys are stored sealed with PORTAL_SECRET_KEY (app.crypto.Sealer), so a database dump
alone cannot sign tokens. One key signs at a time. After a rotation the previous key stays
published in the JWKS for `retired_key_days`, so tokens it signed keep verifying until they
expire. Each process keeps the current key in memory and looks again every few seconds, so a
rotation reaches every instance without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.config import Settings
from app.crypto import Sealer, sealer_of
from app.identity.tables import SigningKey
from app.piccolo_conf import DB

# Any 64-bit number, the same for every instance: one of them creates the first key.
KEY_LOCK = 7_305_213_884_002
REFRESH_SECONDS = 10.0
_ES256 = ec.ECDSA(hashes.SHA256())


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @cached_property
    def _header(self) -> bytes:
        header = {"alg": "ES256", "kid": self.kid, "typ": "at+jwt"}
        return _b64url(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, claims: dict[str, Any]) -> str:
        """An access token: JWS compact serialisation (RFC 7515) with an ES256 signature,
        whose r and s are two 32-byte big-endian numbers (RFC 7518 §3.4), not DER."""
        signing_input = self._header + b"." + _b64url(msgspec.json.encode(claims))
        r, s = decode_dss_signature(self.private_key.sign(signing_input, _ES256))
        return (
            signing_input + b"." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        ).decode()


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


def _new_key() -> tuple[str, str, dict[str, str]]:
    private_key = ec.generate_private_key(ec.SECP256R1())
    numbers = private_key.public_key().public_numbers()
    kid = secrets.token_urlsafe(12)
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x),
        "y": _b64(numbers.y),
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    }
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return kid, pem, jwk


def _context(kid: str) -> str:
    return f"signing-key:{kid}"


async def _insert_key(sealer: Sealer) -> str:
    kid, pem, jwk = _new_key()
    await SigningKey.raw(
        "INSERT INTO signing_key (kid, private_pem, public_jwk) VALUES ({}, {}, {}::jsonb)",
        kid,
        sealer.seal(pem, _context(kid)),
        json.dumps(jwk),
    )
    return kid


async def ensure_signing_key(sealer: Sealer) -> None:
    """Create the first key on first start, and seal keys stored in plain text or under a
    previous secret key again under the current one (instances starting together take
    turns)."""
    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", KEY_LOCK)
        for row in await SigningKey.raw("SELECT kid, private_pem FROM signing_key"):
            if sealer.stale(row["private_pem"], _context(row["kid"])):
                await SigningKey.raw(
                    "UPDATE signing_key SET private_pem = {} WHERE kid = {}",
                    sealer.reseal(row["private_pem"], _context(row["kid"])),
                    row["kid"],
                )
        if not await SigningKey.exists().where(SigningKey.retired_at.is_null()):
            await _insert_key(sealer)


async def rotate(settings: Settings) -> str:
    """A new signing key; the previous one is retired but stays published for a while."""
    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", KEY_LOCK)
        await SigningKey.raw(
            "UPDATE signing_key SET retired_at = now(),"
            " unpublish_at = now() + make_interval(days => {}) WHERE retired_at IS NULL",
            settings.identity.retired_key_days,
        )
        kid = await _insert_key(sealer_of(settings))
    return kid  # noqa: RET504 - returned after the transaction has committed


async def published_keys() -> list[dict[str, Any]]:
    rows = await SigningKey.raw(
        "SELECT public_jwk FROM signing_key WHERE unpublish_at IS NULL OR unpublish_at > now()"
        " ORDER BY created_at DESC"
    )
    return [
        json.loads(row["public_jwk"]) if isinstance(row["public_jwk"], str) else row["public_jwk"]
        for row in rows
    ]


class KeyRing:
    """The current signing key of this process, refreshed from the database now and then.

    Only the very first request waits for the database; after that a refresh runs beside the
    requests, which keep signing with the key they have until it is done.
    """

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._key: ActiveKey | None = None
        self._checked = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def current(self) -> ActiveKey:
        if self._key is None:
            await self._refresh()
        elif time.monotonic() - self._checked > REFRESH_SECONDS and self._refreshing is None:
            # Its own context: never inside the transaction of the request that noticed.
            self._refreshing = asyncio.create_task(
                self._refresh(), name="signing-key-refresh", context=contextvars.Context()
            )
        if self._key is None:
            raise RuntimeError("no signing key")
        return self._key

    async def _refresh(self) -> None:
        try:
            rows = await SigningKey.raw(
                "SELECT kid, private_pem FROM signing_key WHERE retired_at IS NULL"
            )
            if not rows:
                await ensure_signing_key(self._sealer)
                rows = await SigningKey.raw(
                    "SELECT kid, private_pem FROM signing_key WHERE retired_at IS NULL"
                )
            row = rows[0]
            if self._key is None or self._key.kid != row["kid"]:
                pem = self._sealer.open(row["private_pem"], _context(row["kid"]))
                private_key = serialization.load_pem_private_key(pem.encode(), password=None)
                if not isinstance(private_key, ec.EllipticCurvePrivateKey):
                    raise TypeError("signing keys are EC P-256 keys")
                self._key = ActiveKey(row["kid"], private_key)
            self._checked = time.monotonic()
        finally:
            self._refreshing = None
