"""Signing keys for access tokens: ES256 or RS256 (`identity.signing_algorithm`), kept in
PostgreSQL, rotated by `portal keys rotate`.

Private keys are stored sealed with PORTAL_SECRET_KEY (app.crypto.Sealer), so a database dump
alone cannot sign tokens. One key signs at a time. After a rotation the previous key stays
published in the JWKS for `retired_key_days`, so tokens it signed keep verifying until they
expire. Each process keeps the current key in memory and looks again every few seconds, so a
rotation reaches every instance without a restart. A start with another signing algorithm than
the current key's rotates to a new key of that algorithm, so during the switch tokens signed
either way verify.
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

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.config import Settings
from app.crypto import Sealer, sealer_of
from app.identity.tables import SigningKey
from app.piccolo_conf import DB

# Any 64-bit number, the same for every instance: one of them creates the first key.
KEY_LOCK = 7_305_213_884_002
REFRESH_SECONDS = 10.0
_ES256 = ec.ECDSA(hashes.SHA256())
_SHA256 = hashes.SHA256()
_PKCS1 = padding.PKCS1v15()
RSA_BITS = 2048


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def algorithm(self) -> str:
        return "RS256" if isinstance(self.private_key, rsa.RSAPrivateKey) else "ES256"

    @cached_property
    def _header(self) -> bytes:
        header = {"alg": self.algorithm, "kid": self.kid, "typ": "at+jwt"}
        return _b64url(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, claims: dict[str, object]) -> str:
        """An access token: JWS compact serialisation (RFC 7515). An ES256 signature is r and
        s as two 32-byte big-endian numbers (RFC 7518 §3.4), not DER; RS256 is PKCS #1 v1.5."""
        signing_input = self._header + b"." + _b64url(msgspec.json.encode(claims))
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            signature = self.private_key.sign(signing_input, _PKCS1, _SHA256)
        else:
            r, s = decode_dss_signature(self.private_key.sign(signing_input, _ES256))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return (signing_input + b"." + _b64url(signature)).decode()


def _b64int(value: int, length: int | None = None) -> str:
    size = length or (value.bit_length() + 7) // 8
    return _b64url(value.to_bytes(size, "big")).decode()


def _new_key(algorithm: str) -> tuple[str, str, dict[str, str]]:
    kid = secrets.token_urlsafe(12)
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    jwk: dict[str, str]
    if algorithm == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        rsa_numbers = private_key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _b64int(rsa_numbers.n), "e": _b64int(rsa_numbers.e)}
    else:
        private_key = ec.generate_private_key(ec.SECP256R1())
        ec_numbers = private_key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64int(ec_numbers.x, 32),
            "y": _b64int(ec_numbers.y, 32),
        }
    jwk.update({"kid": kid, "use": "sig", "alg": algorithm})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return kid, pem, jwk


def _context(kid: str) -> str:
    return f"signing-key:{kid}"


async def _insert_key(sealer: Sealer, algorithm: str) -> str:
    kid, pem, jwk = _new_key(algorithm)
    await SigningKey.raw(
        "INSERT INTO signing_key (kid, algorithm, private_pem, public_jwk)"
        " VALUES ({}, {}, {}, {}::jsonb)",
        kid,
        algorithm,
        sealer.seal(pem, _context(kid)),
        json.dumps(jwk),
    )
    return kid


async def _retire_current(settings: Settings) -> None:
    await SigningKey.raw(
        "UPDATE signing_key SET retired_at = now(),"
        " unpublish_at = now() + make_interval(days => {}) WHERE retired_at IS NULL",
        settings.identity.retired_key_days,
    )


async def ensure_signing_key(settings: Settings) -> None:
    """Create the first key on first start, or a new one when the signing algorithm changed;
    seal keys stored in plain text or under a previous secret key again under the current
    one (instances starting together take turns)."""
    sealer = sealer_of(settings)
    algorithm = settings.identity.signing_algorithm
    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", KEY_LOCK)
        for row in await SigningKey.raw("SELECT kid, private_pem FROM signing_key"):
            if sealer.stale(row["private_pem"], _context(row["kid"])):
                await SigningKey.raw(
                    "UPDATE signing_key SET private_pem = {} WHERE kid = {}",
                    sealer.reseal(row["private_pem"], _context(row["kid"])),
                    row["kid"],
                )
        current = await SigningKey.select(SigningKey.algorithm).where(
            SigningKey.retired_at.is_null()
        )
        if current and current[0]["algorithm"] != algorithm:
            await _retire_current(settings)
        if not current or current[0]["algorithm"] != algorithm:
            await _insert_key(sealer, algorithm)


async def rotate(settings: Settings) -> str:
    """A new signing key; the previous one is retired but stays published for a while."""
    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", KEY_LOCK)
        await _retire_current(settings)
        kid = await _insert_key(sealer_of(settings), settings.identity.signing_algorithm)
    return kid  # noqa: RET504 - returned after the transaction has committed


async def published_keys() -> list[dict[str, str]]:
    """The public keys of the JWKS (RFC 7517), newest first."""
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

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sealer = sealer_of(settings)
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
                await ensure_signing_key(self._settings)
                rows = await SigningKey.raw(
                    "SELECT kid, private_pem FROM signing_key WHERE retired_at IS NULL"
                )
            row = rows[0]
            if self._key is None or self._key.kid != row["kid"]:
                pem = self._sealer.open(row["private_pem"], _context(row["kid"]))
                private_key = serialization.load_pem_private_key(pem.encode(), password=None)
                if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                    raise TypeError("signing keys are EC P-256 or RSA keys")
                self._key = ActiveKey(row["kid"], private_key)
            self._checked = time.monotonic()
        finally:
            self._refreshing = None
