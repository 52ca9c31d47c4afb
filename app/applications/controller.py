"""Applicaties (manual §3.3): list, add (two ways), view, edit, client secrets; and the
public API documentation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_204_NO_CONTENT, HTTP_303_SEE_OTHER

from app.applications import access, service
from app.applications.forms import (
    OVERLAPS,
    AccessRequestForm,
    ApplicationForm,
    LinkClientForm,
    SecretForm,
)
from app.applications.tables import APPROVED
from app.config import Settings
from app.crypto import sealer_of
from app.identity import diagnostics
from app.identity.service import issuer
from app.throttle import Blocked
from app.web.controllers import (
    NO_STORE,
    AppSettings,
    client_address,
    too_many,
    too_many_attempts,
)
from app.web.i18n import _
from app.web.render import page, redirect
from app.web.sessions import forget, keep, kept, requires_profile, signed_in

# Room for the longest list "Toegang aanvragen" takes, percent-encoded, and the CSRF token: a
# larger post is refused from its Content-Length, before a byte of it is read.
ACCESS_REQUEST_BODY_LIMIT = 4 * access.MOST_TEXT + 1024
# Koppelen's first step keeps the checked client with the session for its second step.
LINKING = "linking-client"
LINK_MINUTES = 15
# What _link answers once the application is linked: the redirect, for a form or for htmx.
LINKED = (HTTP_303_SEE_OTHER, HTTP_204_NO_CONTENT)


def _keys(settings: Settings) -> list[str]:
    return [api.key for api in settings.apis]


def client_taken_message() -> str:
    return _(
        "Sorry! This client is already linked to another application. You can link a"
        " client to one app only."
    )


def invalid_client_message() -> str:
    return _(
        "The client/secret you entered is not valid. If you have no valid client/secret,"
        " request a new one."
    )


def link_refused(
    request: Request[Any, Any, Any], credentials: LinkClientForm, refused: service.ApplicationError
) -> Response[Any]:
    """The client form again, with the manual's message for why the client cannot be linked."""
    if isinstance(refused, service.ClientTaken):
        credentials.add_error("client_id", client_taken_message())
        status = 409
    else:
        credentials.add_error("client_secret", invalid_client_message())
        status = 422
    return page(
        request,
        "applications/link.html",
        {"form": credentials},
        status_code=status,
        headers=NO_STORE,
    )


class ApplicationController(Controller):
    path = "/applicaties"
    guards = [requires_profile]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", name="applications")
    async def list_page(
        self, request: Request[Any, Any, Any], settings: AppSettings, melding: FromQuery[str] = ""
    ) -> Response[Any]:
        applications = await service.list_for(signed_in(request).id)
        progress = await service.progress(signed_in(request).id)
        return page(
            request,
            "applications/list.html",
            {
                "applications": applications,
                "progress": progress,
                "message_key": melding,
                "apis": settings.api_labels,
            },
        )

    @get("/toevoegen", name="application_add")
    async def add_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "applications/add.html", {"error": ""})

    @post("/toevoegen")
    async def add_choice(self, request: Request[Any, Any, Any]) -> Response[Any]:
        choice = (await request.form()).get("way")
        if choice == "koppelen":
            return redirect(request, "/applicaties/koppelen")
        if choice == "nieuw":
            return redirect(request, "/applicaties/nieuw")
        return page(
            request,
            "applications/add.html",
            {"error": _("Choose one of the two ways.")},
            status_code=422,
        )

    @get("/nieuw", name="application_new")
    async def new_page(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        return self._form(request, settings, ApplicationForm(api_keys=_keys(settings)), "new")

    @post("/nieuw")
    async def create(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        account = signed_in(request)
        form = ApplicationForm(await request.form(), api_keys=_keys(settings))
        if not (data := form.validate()):
            return self._form(request, settings, form, "new", status_code=422)
        application_id = await service.request_new_client(account.id, account.email, data, settings)
        return redirect(request, f"/applicaties/{application_id}?melding=aangevraagd")

    @get("/koppelen", name="application_link")
    async def link_page(
        self, request: Request[Any, Any, Any], melding: FromQuery[str] = ""
    ) -> Response[Any]:
        context = {"form": LinkClientForm(), "again": melding == "opnieuw"}
        return page(request, "applications/link.html", context)

    @post("/koppelen")
    async def link(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        """Step 1 checks the client at once; step 2 (the app form) carries it along."""
        data = await request.form()
        credentials = LinkClientForm(data)
        if not (client := credentials.validate()):
            return page(
                request,
                "applications/link.html",
                {"form": credentials},
                status_code=422,
                headers=NO_STORE,
            )
        try:
            existing = await service.check_client(
                client.client_id,
                client.secret,
                settings,
                signed_in(request).id,
                client_address(request),
            )
        except (service.ClientTaken, service.InvalidClient) as refused:
            return link_refused(request, credentials, refused)
        except Blocked as blocked:
            return too_many(
                request,
                "applications/link.html",
                {"form": credentials},
                too_many_attempts(blocked),
                blocked,
            )
        if "step" not in data:
            # Checked: the second step names the client by what the server keeps, for a
            # quarter of an hour, with this session; the secret is not sent back.
            await keep(signed_in(request).session_hash, LINKING, existing.id, LINK_MINUTES)
            form = ApplicationForm(api_keys=_keys(settings), apis=existing.apis)
            return self._form(
                request, settings, form, "link", credentials=credentials, locked=existing.apis
            )
        return await self._link(request, settings, data, existing, credentials, client.secret)

    @post("/koppelen/applicatie")
    async def link_checked(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        """Step 2 of Koppelen: the application for the client step 1 checked."""
        account = signed_in(request)
        client_pk = await kept(account.session_hash, LINKING)
        if not isinstance(client_pk, int):
            return redirect(request, "/applicaties/koppelen?melding=opnieuw")
        existing = await service.linkable_client(client_pk, settings)
        credentials = LinkClientForm({"client_id": existing.client_id if existing else ""})
        if existing is None:
            return link_refused(request, credentials, service.InvalidClient())
        response = await self._link(request, settings, await request.form(), existing, credentials)
        if response.status_code in LINKED:  # the kept client is used up
            await forget(account.session_hash, LINKING)
        return response

    async def _link(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        data: Any,
        existing: service.ExistingClient,
        credentials: LinkClientForm,
        secret: str | None = None,
    ) -> Response[Any]:
        """The application form of Koppelen: its errors, or the linked application. Without
        `secret` the client is the one this session's first step checked."""
        form = ApplicationForm(data, api_keys=_keys(settings))
        form.apis = sorted(set(form.apis) | set(existing.apis), key=_keys(settings).index)
        if not (application := form.validate()):
            return self._form(
                request,
                settings,
                form,
                "link",
                status_code=422,
                credentials=credentials,
                locked=existing.apis,
            )
        client = existing.client_id if secret is not None else existing.id
        try:
            application_id = await service.link_existing_client(
                signed_in(request).id, client, secret, application, settings
            )
        except (service.ClientTaken, service.InvalidClient) as refused:
            return link_refused(request, credentials, refused)
        return redirect(request, f"/applicaties/{application_id}?melding=gekoppeld")

    def _form(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        form: ApplicationForm,
        mode: str,
        *,
        status_code: int = 200,
        application: service.Detail | None = None,
        credentials: LinkClientForm | None = None,
        locked: list[str] | None = None,
        losses: dict[str, int] | None = None,
    ) -> Response[Any]:
        return page(
            request,
            "applications/form.html",
            {
                "form": form,
                "mode": mode,
                "apis": settings.apis,
                "application": application,
                "credentials": credentials,
                "locked": locked or [],
                "losses": losses or {},
            },
            status_code=status_code,
            headers=NO_STORE if credentials else None,
        )

    @get("/{application_id:uuid}", name="application")
    async def detail(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        application_id: FromPath[UUID],
        melding: FromQuery[str] = "",
    ) -> Response[Any]:
        return await self._detail(request, settings, application_id, message_key=melding)

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        application_id: UUID,
        *,
        message_key: str = "",
        secret_form: SecretForm | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        application = await self._get(request, application_id)
        account = signed_in(request)
        new_secret = await service.take_new_secret(
            application_id, account.session_hash, sealer_of(settings)
        )
        return page(
            request,
            "applications/detail.html",
            {
                "application": application,
                "progress": await service.progress(account.id),
                "apis": settings.apis,
                "message_key": message_key,
                "new_secret": new_secret,
                "secret_form": secret_form or SecretForm(),
                "api_labels": settings.api_labels,
                "traffic": (
                    await diagnostics.traffic(application.client_pk, settings)
                    if application.client_pk
                    else None
                ),
                "requests": await access.sent_requests(signed_in(request).id, application_id),
                "history": await access.access_history(signed_in(request).id, application_id),
                "overlaps": list(OVERLAPS),
                "issuer": issuer(settings),
            },
            status_code=status_code,
            # A new secret is shown this once: not stored by the browser or a proxy.
            headers=NO_STORE if new_secret else None,
        )

    async def _get(self, request: Request[Any, Any, Any], application_id: UUID) -> service.Detail:
        return await service.get(signed_in(request).id, application_id)

    @get("/{application_id:uuid}/bewerken", name="application_edit")
    async def edit_page(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        application_id: FromPath[UUID],
        verlies: FromQuery[str] = "",
        apis: FromQuery[list[str] | None] = None,
    ) -> Response[Any]:
        """The form; with `verlies`, what the ticked `apis` would cost before anything is saved
        (htmx asks for the api_losses block when a box changes)."""
        application = await self._get(request, application_id)
        ticked = (
            [key for key in apis or [] if key in _keys(settings)] if verlies else application.apis
        )
        form = ApplicationForm(
            {key: getattr(application, key, "") for key in ApplicationForm.fields},
            api_keys=_keys(settings),
            apis=ticked,
        )
        losses = service.scopes_lost(application, ticked) if verlies else None
        return self._form(request, settings, form, "edit", application=application, losses=losses)

    @post("/{application_id:uuid}/bewerken")
    async def save(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        account = signed_in(request)
        application = await self._get(request, application_id)
        form = ApplicationForm(await request.form(), api_keys=_keys(settings))
        if not (data := form.validate()):
            return self._form(
                request, settings, form, "edit", application=application, status_code=422
            )
        losses = service.scopes_lost(application, data.apis)
        if losses and not form.values["confirm_removal"]:
            # Unticking an API deletes its scopes: say how many schools lose access first.
            return self._form(
                request,
                settings,
                form,
                "edit",
                application=application,
                losses=losses,
                status_code=409,
            )
        try:
            await service.update(account.id, application_id, data, settings)
        except service.NotEditable:
            raise NotFoundException() from None
        return redirect(request, f"/applicaties/{application_id}?melding=opgeslagen")

    @post("/{application_id:uuid}/secrets")
    async def new_secret(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        account = signed_in(request)
        form = SecretForm(await request.form())
        if not (choice := form.validate()):
            return await self._detail(
                request, settings, application_id, secret_form=form, status_code=422
            )
        try:
            await service.generate_secret(
                account.id,
                application_id,
                choice,
                session_hash=account.session_hash,
                sealer=sealer_of(settings),
                settings=settings,
            )
        except service.NoClient:
            return redirect(request, f"/applicaties/{application_id}")
        except service.RecentlyUsed as used:
            return await self._confirm(request, application_id, used.secrets, form=form)
        # Post/redirect/get: the page after the redirect shows the secret once; reloading it,
        # Back or a bookmark never makes another.
        return redirect(request, f"/applicaties/{application_id}?melding=secret#secrets")

    @get("/{application_id:uuid}/secrets")
    async def secrets_page(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        """Back or a bookmark after "Genereer secret": the application page, nothing made."""
        await self._get(request, application_id)
        return redirect(request, f"/applicaties/{application_id}#secrets")

    @post("/{application_id:uuid}/secrets/{secret_id:int}/intrekken")
    async def revoke_secret(
        self,
        request: Request[Any, Any, Any],
        application_id: FromPath[UUID],
        secret_id: FromPath[int],
    ) -> Response[Any]:
        confirmed = (await request.form()).get("confirm") == "yes"
        try:
            await service.revoke_secret(
                signed_in(request).id, application_id, secret_id, confirmed=confirmed
            )
        except service.RecentlyUsed as used:
            return await self._confirm(request, application_id, used.secrets, revoking=secret_id)
        return redirect(request, f"/applicaties/{application_id}?melding=ingetrokken#secrets")

    @get("/{application_id:uuid}/secrets/{secret_id:int}/intrekken")
    async def revoke_page(
        self,
        request: Request[Any, Any, Any],
        application_id: FromPath[UUID],
        secret_id: FromPath[int],
    ) -> Response[Any]:
        await self._get(request, application_id)
        return redirect(request, f"/applicaties/{application_id}#secrets")

    async def _confirm(
        self,
        request: Request[Any, Any, Any],
        application_id: UUID,
        secrets: list[service.Secret],
        *,
        form: SecretForm | None = None,
        revoking: int | None = None,
    ) -> Response[Any]:
        """Live software used these secrets lately: say when, and ask before they stop."""
        return page(
            request,
            "applications/confirm_secret.html",
            {
                "application": await self._get(request, application_id),
                "secrets": secrets,
                "form": form,
                "revoking": revoking,
            },
            status_code=409,
            headers=NO_STORE,
        )

    @get("/{application_id:uuid}/toegang-aanvragen", name="access_request")
    async def access_request_page(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        return await self._access_request(request, application_id, AccessRequestForm())

    @post(
        "/{application_id:uuid}/toegang-aanvragen", request_max_body_size=ACCESS_REQUEST_BODY_LIMIT
    )
    async def access_request(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        # Whose application, and whether it may ask, before anything in the post is read.
        application = await self._get(request, application_id)
        if application.status != APPROVED:
            return redirect(request, f"/applicaties/{application_id}")
        form = AccessRequestForm(await request.form())
        if not (addresses := form.validate()):
            return await self._access_request(request, application_id, form, status_code=422)
        try:
            account = signed_in(request).id
            await access.request_access(account, application_id, addresses, settings)
        except access.TooMany as too_many:
            form.add_error(
                "addresses",
                _(
                    "Today you can still send %(left)d requests for this application.",
                    left=too_many.allowed,
                ),
            )
            return await self._access_request(request, application_id, form, status_code=429)
        except access.NotApproved:
            return redirect(request, f"/applicaties/{application_id}")
        return redirect(
            request, f"/applicaties/{application_id}?melding=toegang-aangevraagd#toegang"
        )

    async def _access_request(
        self,
        request: Request[Any, Any, Any],
        application_id: UUID,
        form: AccessRequestForm,
        status_code: int = 200,
    ) -> Response[Any]:
        application = await self._get(request, application_id)
        if application.status != APPROVED:
            return redirect(request, f"/applicaties/{application_id}")
        return page(
            request,
            "applications/access_request.html",
            {"application": application, "form": form, "link_days": access.LINK_DAYS},
            status_code=status_code,
        )


class ApiDocumentationController(Controller):
    @get("/api-documentatie", name="api_docs")
    async def docs(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        return page(
            request,
            "applications/api_docs.html",
            {"apis": settings.apis, "issuer": issuer(settings)},
        )
