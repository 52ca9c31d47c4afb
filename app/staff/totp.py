"""An optional second factor for staff: time-based codes (RFC 6238) from an authenticator app.

Enrolment shows a QR code for a new secret; the first correct code confirms it, and from then
on every sign-in asks for a code after the password. A code is accepted once (the last time step
used is kept) and within one step of the clock either way; wrong codes are rate-limited. The
secrets are stored sealed with PORTAL_SECRET_KEY (app.crypto.Sealer).
"""

from __future__ import annotations

import datetime as dt
import time

import pyotp
import segno

from app import throttle
from app.crypto import Sealer
from app.piccolo_conf import DB
from app.staff.tables import Staff

STEP = 30
CODE_ATTEMPTS = throttle.Policy(
    "staff-code",
    free=5,
    window=dt.timedelta(minutes=15),
    first_block=dt.timedelta(seconds=30),
    longest=dt.timedelta(minutes=15),
)


def qr_code(secret: str, username: str, issuer: str) -> str:
    """The enrolment QR code as an SVG data URI (the page's CSP allows data: images)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    data_uri: str = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#0b2545")
    return data_uri


async def enrolled(staff_id: int) -> bool:
    row = await Staff.select(Staff.totp_enrolled_at).where(Staff.id == staff_id).first()
    return bool(row and row["totp_enrolled_at"])


def _context(staff_id: int) -> str:
    return f"staff-totp:{staff_id}"


async def seal_stored_secrets(sealer: Sealer) -> None:
    """Seal secrets stored in plain text or under a previous secret key again under the
    current one (at start-up; harmless when repeated)."""
    rows = await Staff.raw("SELECT id, totp_secret FROM staff WHERE totp_secret IS NOT NULL")
    for row in rows:
        if sealer.stale(row["totp_secret"], _context(row["id"])):
            await Staff.raw(
                "UPDATE staff SET totp_secret = {} WHERE id = {} AND totp_secret = {}",
                sealer.reseal(row["totp_secret"], _context(row["id"])),
                row["id"],
                row["totp_secret"],
            )


async def start_enrolment(staff_id: int, sealer: Sealer) -> str | None:
    """A new pending secret; None when the staff member has enrolled already."""
    secret = pyotp.random_base32()
    rows = await Staff.raw(
        "UPDATE staff SET totp_secret = {} WHERE id = {} AND totp_enrolled_at IS NULL RETURNING id",
        sealer.seal(secret, _context(staff_id)),
        staff_id,
    )
    return secret if rows else None


async def pending_secret(staff_id: int, sealer: Sealer) -> str | None:
    row = (
        await Staff.select(Staff.totp_secret, Staff.totp_enrolled_at)
        .where(Staff.id == staff_id)
        .first()
    )
    if not row or row["totp_enrolled_at"] or not row["totp_secret"]:
        return None
    return sealer.open(row["totp_secret"], _context(staff_id))


async def check(staff_id: int, code: str, sealer: Sealer, *, enrolling: bool = False) -> bool:
    """Whether the code is right now; a right code is used up. Raises Blocked when too many
    wrong codes were tried."""
    subject = str(staff_id)
    # Claimed before the code is looked at, so parallel guesses never pass the limit.
    await throttle.claim((CODE_ATTEMPTS, subject))
    code = code.strip().replace(" ", "")
    async with DB.transaction():
        rows = await Staff.raw(
            "SELECT totp_secret, totp_enrolled_at, totp_last_step FROM staff WHERE id = {}"
            " FOR UPDATE",
            staff_id,
        )
        row = rows[0] if rows else None
        usable = row and row["totp_secret"] and bool(row["totp_enrolled_at"]) != enrolling
        step = (
            _matching_step(sealer.open(row["totp_secret"], _context(staff_id)), code)
            if usable and row
            else None
        )
        right = row is not None and step is not None and step > row["totp_last_step"]
        if right:
            await Staff.raw(
                "UPDATE staff SET totp_last_step = {},"
                " totp_enrolled_at = coalesce(totp_enrolled_at, now()) WHERE id = {}",
                step,
                staff_id,
            )
    if not right:
        return False  # the claimed attempt stays counted
    await throttle.clear(CODE_ATTEMPTS, subject)
    return True


def _matching_step(secret: str, code: str) -> int | None:
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // STEP
    for step in (now - 1, now, now + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
