"""Parallel guesses against a rate limit: each attempt is claimed before it is checked, so no
more than the limit are ever checked, and the right answer sent just after is refused too.

Today's code once checked 20 simultaneous wrong passwords and let the right one in, and
checked 30 simultaneous TOTP codes where 5 are allowed. These tests commit their data, so that
the attempts run on connections of their own, as parallel requests do."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import pkgutil
import time
from types import ModuleType
from typing import Any

import pyotp
import pytest

from app.accounts import passwords
from app.accounts import service as accounts
from app.applications import service as applications
from app.config import get_settings
from app.crypto import sealer_of
from app.helpdesk import service as helpdesk_service
from app.identity.service import TOKEN_ADDRESS, TOKEN_CLIENT
from app.mail.tables import OutboxMail
from app.partners import service as partners
from app.staff import service as backoffice
from app.staff import totp
from app.staff.tables import Staff
from app.throttle import (
    CLIENT_LINK_ACCOUNT,
    INVITATION_ACCOUNT,
    MAIL_REQUESTS_ADDRESS,
    MAIL_REQUESTS_RECIPIENT,
    SIGN_IN_ACCOUNT,
    SIGN_IN_ADDRESS,
    Blocked,
    Policy,
)
from tests.factories import (
    PASSWORD,
    make_account,
    make_client,
    make_partner,
    make_staff,
    submit_application,
)

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
    from app.schoolaccess.tables import AccessRequest
    from tests.integration.staff.helpers import as_staff

    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    staff = await as_staff(await make_staff())
    await helpdesk_service.approve(staff, application_id, get_settings())  # type: ignore[arg-type]
    account_id = partner["account"].id  # type: ignore[attr-defined]
    batches = [
        [f"beheer{batch}-{n}@school.be" for n in range(access.MOST_PER_REQUEST)]
        for batch in range(8)
    ]
    await asyncio.gather(
        *(
            access.request_access(account_id, application_id, batch, get_settings())
            for batch in batches
        ),  # type: ignore[arg-type]
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
            partners.link_with_code(newcomer.id, f"FOUT-{n:04d}", f"192.0.2.{n}", get_settings())
            for n in range(PARALLEL)
        ),
        return_exceptions=True,
    )
    wrong = sum(isinstance(outcome, partners.InvitationProblem) for outcome in outcomes)
    assert wrong <= INVITATION_ACCOUNT.free, f"{wrong} codes checked"
    with pytest.raises(Blocked):
        await partners.link_with_code(newcomer.id, code, "192.0.2.200", get_settings())


async def test_parallel_wrong_client_secrets_while_linking_check_no_more_than_the_limit(
    app: Any, committed: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(secret="de-juiste-secret-0123456789")
    account = await make_account()
    tried: list[str] = []
    linkable = applications._linkable

    async def counted(row: Any, secret: str, settings: Any) -> Any:
        tried.append(secret)
        return await linkable(row, secret, settings)

    monkeypatch.setattr(applications, "_linkable", counted)
    await asyncio.gather(
        *(
            applications.check_client(
                str(client["client_id"]), f"fout-{n}", settings, account.id, f"192.0.2.{n}"
            )
            for n in range(PARALLEL)
        ),
        return_exceptions=True,
    )
    assert len(tried) <= CLIENT_LINK_ACCOUNT.free, f"{len(tried)} secrets checked"
    with pytest.raises(Blocked):
        await applications.check_client(
            str(client["client_id"]), "de-juiste-secret-0123456789", settings, account.id, "x"
        )


async def test_parallel_sign_ins_from_one_address_check_no_more_than_its_limit(
    app: Any, committed: None, checked: list[str]
) -> None:
    people = [await make_account() for _ in range(SIGN_IN_ADDRESS.free + 10)]
    await asyncio.gather(
        *(accounts.sign_in(person.email, "Verkeerd!1", "198.51.100.7") for person in people),
        return_exceptions=True,
    )
    assert len(checked) <= SIGN_IN_ADDRESS.free, f"{len(checked)} passwords checked"


async def test_parallel_mail_requests_stay_within_the_address_and_mailbox_limits(
    app: Any, committed: None
) -> None:
    people = [await make_account() for _ in range(MAIL_REQUESTS_ADDRESS.free + 10)]
    await asyncio.gather(
        *(
            accounts.request_password_reset(person.email, "198.51.100.8", get_settings())
            for person in people
        ),
        return_exceptions=True,
    )
    from_one_address = await OutboxMail.count().where(OutboxMail.kind == "password_reset")
    assert from_one_address <= MAIL_REQUESTS_ADDRESS.free, f"{from_one_address} mails"

    target = people[-1].email
    await asyncio.gather(
        *(
            accounts.request_password_reset(target, f"203.0.113.{n}", get_settings())
            for n in range(PARALLEL)
        ),
        return_exceptions=True,
    )
    to_one_mailbox = await OutboxMail.count().where(OutboxMail.recipient == target)
    assert to_one_mailbox <= MAIL_REQUESTS_RECIPIENT.free, f"{to_one_mailbox} mails to one inbox"


# Every rate limit has a parallel test above, or says here why it needs none.
PARALLEL_TESTED = {
    SIGN_IN_ACCOUNT.name,
    SIGN_IN_ADDRESS.name,
    MAIL_REQUESTS_ADDRESS.name,
    MAIL_REQUESTS_RECIPIENT.name,
    INVITATION_ACCOUNT.name,
    CLIENT_LINK_ACCOUNT.name,
    backoffice.STAFF_SIGN_IN.name,
    totp.CODE_ATTEMPTS.name,
}
WITHOUT_CLAIM = {
    # The token endpoint checks its blocks from memory and writes only failures, so that a
    # token costs no write; parallel wrong secrets are each checked, which is harmless: a
    # client secret has 256 random bits, and the limit is there against load, not guessing.
    TOKEN_ADDRESS.name,
    TOKEN_CLIENT.name,
}


def policies_in(modules: list[ModuleType]) -> set[str]:
    return {
        value.name
        for module in modules
        for value in vars(module).values()
        if isinstance(value, Policy)
    }


def app_modules() -> list[ModuleType]:
    import app as package

    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, "app.")
        if not info.name.endswith(("__main__", "asgi"))
    ]


def test_every_rate_limit_is_tested_in_parallel_or_says_why_not() -> None:
    assert policies_in(app_modules()) == PARALLEL_TESTED | WITHOUT_CLAIM


def test_a_rate_limit_added_without_a_parallel_test_is_caught() -> None:
    added = ModuleType("app.example")
    added.NEW_LIMIT = Policy(  # type: ignore[attr-defined]
        "example:account", 3, dt.timedelta(minutes=1), dt.timedelta(1), dt.timedelta(1)
    )
    found = policies_in([*app_modules(), added])
    assert found - (PARALLEL_TESTED | WITHOUT_CLAIM) == {"example:account"}
