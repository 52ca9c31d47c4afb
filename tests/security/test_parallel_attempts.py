"""Parallel guesses against a rate limit: each attempt is claimed before it is checked, so no
more than the limit are ever checked, and the right answer sent just after is refused too.

Today's code once checked 20 simultaneous wrong passwords and let the right one in, and
checked 30 simultaneous TOTP codes where 5 are allowed. These tests commit their data, so that
the attempts run on connections of their own, as parallel requests do."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pyotp
import pytest

from app.accounts import passwords
from app.accounts import service as accounts
from app.backoffice import service as backoffice
from app.backoffice import totp
from app.backoffice.tables import Staff
from app.crypto import sealer_of
from app.partners import service as partners
from app.web.throttle import INVITATION_ACCOUNT, SIGN_IN_ACCOUNT, Blocked
from tests.factories import PASSWORD, make_account, make_partner, make_staff, submit_application

pytestmark = pytest.mark.anyio
PARALLEL = 30


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the service actually checks, in order."""
    seen: list[str] = []
    verify = passwords.verify_password

    async def counted(stored: str | None, password: str) -> bool:
        seen.append(password)
        return await verify(stored, password)

    monkeypatch.setattr(passwords, "verify_password", counted)
    return seen


async def test_parallel_wrong_passwords_check_no_more_than_the_limit(
    app: Any, committed: None, checked: list[str]
) -> None:
    account = await make_account()
    attempts = [
        accounts.sign_in(account.email, f"Verkeerd!Wachtwoord{n}", f"192.0.2.{n}")
        for n in range(PARALLEL)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert len(checked) <= SIGN_IN_ACCOUNT.free, f"{len(checked)} passwords checked"
    assert (
        sum(isinstance(outcome, Blocked) for outcome in outcomes) >= PARALLEL - SIGN_IN_ACCOUNT.free
    )
    with pytest.raises(Blocked):
        await accounts.sign_in(account.email, PASSWORD, "192.0.2.200")


async def test_parallel_wrong_codes_check_no_more_than_the_limit(
    app: Any, committed: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = await make_staff()
    secret = pyotp.random_base32()
    sealer = sealer_of(settings)
    staff = await Staff.select(Staff.id).where(Staff.username == username).first()
    assert staff is not None
    await Staff.update(
        {
            Staff.totp_secret: sealer.seal(secret, totp._context(staff["id"])),
            Staff.totp_enrolled_at: dt.datetime.now(dt.UTC),
        }
    ).where(Staff.id == staff["id"])
    checked: list[str] = []
    matching = totp._matching_step

    def counted(stored: str, code: str) -> int | None:
        checked.append(code)
        return matching(stored, code)

    monkeypatch.setattr(totp, "_matching_step", counted)
    wrong = [f"{n:06d}" for n in range(PARALLEL) if f"{n:06d}" != pyotp.TOTP(secret).now()]
    outcomes = await asyncio.gather(
        *(totp.check(staff["id"], code, sealer) for code in wrong), return_exceptions=True
    )
    assert len(checked) <= totp.CODE_ATTEMPTS.free, f"{len(checked)} codes checked"
    assert all(outcome is False or isinstance(outcome, Blocked) for outcome in outcomes)
    with pytest.raises(Blocked):
        await totp.check(staff["id"], pyotp.TOTP(secret).at(time.time()), sealer)


async def test_parallel_access_requests_stay_within_the_days_quota(
    app: Any, committed: None
) -> None:
    from app.applications import access
    from app.backoffice import service as backoffice
    from app.backoffice.tables import AccessRequest
    from tests.integration.backoffice.helpers import as_staff

    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    await backoffice.approve(await as_staff(await make_staff()), application_id)  # type: ignore[arg-type]
    account_id = partner["account"].id  # type: ignore[attr-defined]
    batches = [
        [f"beheer{batch}-{n}@school.be" for n in range(access.MOST_PER_REQUEST)]
        for batch in range(8)
    ]
    await asyncio.gather(
        *(access.request_access(account_id, application_id, batch) for batch in batches),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    sent = await AccessRequest.count().where(AccessRequest.application == application_id)
    assert sent == access.MOST_PER_DAY, f"{sent} requests sent"


async def test_parallel_wrong_staff_passwords_check_no_more_than_the_limit(
    app: Any, committed: None, checked: list[str]
) -> None:
    username = await make_staff()
    outcomes = await asyncio.gather(
        *(
            backoffice.sign_in(username, f"Verkeerd!Wachtwoord{n}", f"192.0.2.{n}")
            for n in range(PARALLEL)
        ),
        return_exceptions=True,
    )
    assert len(checked) <= backoffice.STAFF_SIGN_IN.free, f"{len(checked)} passwords checked"
    assert all(isinstance(outcome, Exception) for outcome in outcomes)
    with pytest.raises(Blocked):
        await backoffice.sign_in(username, PASSWORD, "192.0.2.200")


async def test_parallel_wrong_invitation_codes_check_no_more_than_the_limit(
    app: Any, committed: None
) -> None:
    owner = await make_partner(listed=False)
    code = await partners.create_invitation(owner["account"].id)  # type: ignore[attr-defined]
    newcomer = await make_account()
    outcomes = await asyncio.gather(
        *(
            partners.link_with_code(newcomer.id, f"FOUT-{n:04d}", f"192.0.2.{n}")
            for n in range(PARALLEL)
        ),
        return_exceptions=True,
    )
    wrong = sum(isinstance(outcome, partners.InvitationProblem) for outcome in outcomes)
    assert wrong <= INVITATION_ACCOUNT.free, f"{wrong} codes checked"
    with pytest.raises(Blocked):
        await partners.link_with_code(newcomer.id, code, "192.0.2.200")
