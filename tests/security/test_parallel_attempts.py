"""Parallel requests against a limit: the limit holds. These tests commit their data, so that
the requests run on connections of their own, as parallel requests do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.factories import make_staff

pytestmark = pytest.mark.anyio
PARALLEL = 30


async def test_parallel_access_requests_stay_within_the_days_quota(
    app: Any, committed: None
) -> None:
    from app.applications import access
    from app.backoffice import service as backoffice
    from app.backoffice.tables import AccessRequest
    from tests.factories import make_partner, submit_application
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
