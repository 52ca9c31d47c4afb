"""Staff for back-office tests: a signed-in browser, and the service's view of a user."""

from __future__ import annotations

from typing import Any

from app.staff.service import CurrentStaff
from app.staff.tables import Staff
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD


async def staff_browser(app: Any, username: str) -> Browser:
    browser = browser_for(app)
    response = await browser.submit(
        "/backoffice/aanmelden", {"username": username.upper(), "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    return browser


async def as_staff(username: str) -> CurrentStaff:
    row = await Staff.select(Staff.id, Staff.role).where(Staff.username == username).first()
    assert row is not None
    return CurrentStaff(row["id"], username, row["role"], "")
