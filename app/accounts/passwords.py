"""People's passwords: the manual's rule, a list of common passwords, argon2id hashing.

Hashing takes a quarter of a second of CPU on purpose; it runs in the bounded worker pool
(`app.web.offload`) so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.web import offload
from app.web.i18n import _

MIN_LENGTH = 8
# Long passphrases are welcome; the cap only keeps a single request from costing seconds.
MAX_LENGTH = 1024
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
hasher = PasswordHasher()
_dummy_hash: str | None = None


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def password_problems(password: str, email: str = "") -> list[str]:
    """Every rule the password breaks, as messages for the form (empty when it is fine)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(_("Use at least 8 characters."))
    if len(password) > MAX_LENGTH:
        problems.append(_("Use at most 1024 characters."))
    if not any(char.isupper() for char in password):
        problems.append(_("Add at least one capital letter."))
    if not any(char.islower() for char in password):
        problems.append(_("Add at least one lower-case letter."))
    if not any(char.isdigit() for char in password):
        problems.append(_("Add at least one digit."))
    if all(char.isalnum() for char in password):
        problems.append(_("Add at least one special character, such as ! ? # or %."))
    if not problems:
        lowered = password.lower()
        if lowered in common_passwords() or (email and lowered == email.lower()):
            problems.append(_("This password is too common and easy to guess. Choose another."))
    return problems


async def hash_password(password: str) -> str:
    return await offload.PASSWORDS.run(hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown account) the same work is done, then False."""
    target = password_hash or await _dummy()
    try:
        ok: bool = await offload.PASSWORDS.run(hasher.verify, target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return hasher.check_needs_rehash(password_hash)


async def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password("not a real password, only spends the same time")
    return _dummy_hash
