"""The school administrators' room (manual §3.4): what reaches their schools, a partner's
invitation to grant access, and adjusting access later."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery

from app.schoolaccess import service
from app.staff.controller import staff_page
from app.staff.service import NotAllowed
from app.staff.sessions import current, requires_school_admin
from app.web.controllers import NO_STORE, AppSettings
from app.web.inputs import page_number
from app.web.render import redirect

ACCESS = "/backoffice/toegang"


def _swapping(request: Request[Any, Any, Any]) -> bool:
    """An htmx save of the grant grid: it gets the grid back, with what changed."""
    return bool(getattr(request, "htmx", None)) and request.headers.get("hx-target") == "grant_grid"


def _chosen(values: list[str]) -> set[tuple[str, str]]:
    """The ticked boxes, each "institution number:api"; anything else is refused."""
    chosen = set()
    for value in values:
        number, separator, api = str(value).partition(":")
        if not separator or not number or not api:
            raise ValueError(value)
        chosen.add((number, api))
    return chosen


class SchoolAccessController(Controller):
    path = "/backoffice"
    guards = [requires_school_admin]  # noqa: RUF012 - Litestar reads it as a class attribute
    # Partner sessions mean nothing here; staff sessions are checked by the guard.
    opt = {"no_session": True}  # noqa: RUF012

    @get("/toegang", name="access_overview")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        melding: FromQuery[str] = "",
        pagina: FromQuery[str] = "1",
    ) -> Response[Any]:
        staff = current(request)
        result = await service.overview_page(staff, page_number(pagina))
        context = {
            "result": result,
            "schools": await service.my_schools(staff),
            "apis": settings.api_labels,
            "saved": melding == "opgeslagen",
        }
        return staff_page(request, "schoolaccess/overview.html", context)

    @get("/toegang.csv", name="access_csv")
    async def csv(
        self, request: Request[Any, Any, Any], settings: AppSettings, school: FromQuery[str] = ""
    ) -> Response[str]:
        rows = await service.overview(current(request), settings, school)
        return Response(
            service.overview_csv(rows, settings),
            media_type="text/csv; charset=utf-8",
            headers={
                **NO_STORE,
                "Content-Disposition": 'attachment; filename="applicaties-met-toegang.csv"',
            },
        )

    @get("/toegang/{token:str}", name="access_invitation")
    async def invitation(
        self, request: Request[Any, Any, Any], settings: AppSettings, token: FromPath[str]
    ) -> Response[Any]:
        try:
            view = await service.open_invitation(current(request), token)
        except service.AccessLinkProblem as problem:
            return self._invitation_problem(request, problem)
        return self._grant_page(request, settings, view, f"{ACCESS}/{token}")

    @post("/toegang/{token:str}")
    async def grant_invited(
        self, request: Request[Any, Any, Any], settings: AppSettings, token: FromPath[str]
    ) -> Response[Any]:
        staff = current(request)
        form = await request.form()
        try:
            view = await service.open_invitation(staff, token)
            chosen = _chosen(form.getall("grant", []))
            changes = await service.save(staff, view.application.id, chosen, token, settings)
        except service.AccessLinkProblem as problem:
            return self._invitation_problem(request, problem)
        except (ValueError, NotAllowed):
            raise PermissionDeniedException() from None
        if _swapping(request):
            # The link keeps working for a month; after the first save, the grid is the
            # application's own (it reaches the administrator's schools now, or did before).
            view = await service.open_invitation(staff, token)
            return self._grant_page(request, settings, view, f"{ACCESS}/{token}", changes)
        return redirect(request, f"{ACCESS}?melding=opgeslagen")

    @get("/toegang/applicaties/{application_id:uuid}", name="access_application")
    async def application(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        view = await service.open_application(current(request), application_id)
        return self._grant_page(request, settings, view, f"{ACCESS}/applicaties/{application_id}")

    @post("/toegang/applicaties/{application_id:uuid}")
    async def grant_reached(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        form = await request.form()
        staff = current(request)
        try:
            chosen = _chosen(form.getall("grant", []))
            changes = await service.save(staff, application_id, chosen, None, settings)
        except (ValueError, NotAllowed):
            raise PermissionDeniedException() from None
        if _swapping(request):
            view = await service.open_application(staff, application_id)
            action = f"{ACCESS}/applicaties/{application_id}"
            return self._grant_page(request, settings, view, action, changes)
        return redirect(request, f"{ACCESS}?melding=opgeslagen")

    def _grant_page(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        view: service.GrantView,
        action: str,
        changes: tuple[set[tuple[str, str]], set[tuple[str, str]]] | None = None,
    ) -> Response[Any]:
        context: dict[str, Any] = {
            "view": view,
            "application": view.application,
            "apis": settings.api_labels,
            "action": action,
        }
        if changes is not None:
            context["changes"] = changes
        return staff_page(request, "schoolaccess/grant.html", context)

    def _invitation_problem(
        self, request: Request[Any, Any, Any], problem: service.AccessLinkProblem
    ) -> Response[Any]:
        status = {"unknown": 404, "expired": 410, "no-rights": 403}.get(problem.reason, 409)
        context = {"problem": problem}
        return staff_page(
            request, "schoolaccess/invitation_problem.html", context, status_code=status
        )
