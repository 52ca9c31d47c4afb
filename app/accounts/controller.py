"""Account pages (manual §3.1): Registreren, activeren, Aanmelden, Afmelden, wachtwoord vergeten."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery

from app.accounts import service
from app.accounts.forms import EmailForm, NewPasswordForm, RegistrationForm, SignInForm
from app.accounts.service import Credentials
from app.throttle import Blocked
from app.web.controllers import (
    NO_STORE,
    AppSettings,
    client_address,
    too_many,
    too_many_attempts,
    too_many_requests,
)
from app.web.forms import Form
from app.web.i18n import _, current_language
from app.web.render import page, redirect, safe_next
from app.web.sessions import (
    cookie_name,
    current_account,
    end_session,
    start_session,
)

PARTNER_HOME = "/partnerzone"


def link_problem_message(problem: service.LinkProblem) -> str:
    if problem.reason == "expired":
        return _("This link has expired.")
    if problem.reason == "used":
        return _("This link has already been used.")
    return _("This link is not valid.")


Entered = TypeVar("Entered")


async def _mail_request(
    request: Request[Any, Any, Any],
    template: str,
    form: Form[Entered],
    context: dict[str, Any],
    ask: Callable[[Entered], Awaitable[None]],
    done: str,
) -> Response[Any]:
    """A form that has the portal send a mail: the form again with its errors or the rate
    limit's message, or on to `done`."""
    context = {**context, "form": form}
    if not (entered := form.validate()):
        return page(request, template, context, status_code=422)
    try:
        await ask(entered)
    except Blocked as blocked:
        return too_many(request, template, context, too_many_requests(blocked), blocked)
    return redirect(request, done)


class AccountController(Controller):
    @get("/registreren", name="register")
    async def register_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if current_account(request):
            return redirect(request, PARTNER_HOME)
        return page(request, "accounts/register.html", {"form": RegistrationForm()})

    @post("/registreren")
    async def register(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        address, language = client_address(request), current_language()

        async def register(entered: Credentials) -> None:
            await service.register(entered.email, entered.password, language, address, settings)

        form = RegistrationForm(await request.form())
        done = "/registreren/controleer-je-mailbox"
        return await _mail_request(request, "accounts/register.html", form, {}, register, done)

    @get("/registreren/controleer-je-mailbox")
    async def check_mailbox(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "accounts/check_mailbox.html", {"reason": "activation"})

    @get("/activeren/{token:str}", name="activate")
    async def activation_page(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[Any]:
        try:
            email = await service.check_link(token, service.ACTIVATION)
        except service.LinkProblem as problem:
            return self._link_problem(request, problem)
        return page(
            request, "accounts/activate.html", {"email": email, "token": token}, headers=NO_STORE
        )

    @post("/activeren/{token:str}")
    async def activate(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[Any]:
        try:
            await service.activate(token)
        except service.LinkProblem as problem:
            return self._link_problem(request, problem)
        return redirect(request, "/aanmelden?melding=geactiveerd")

    def _link_problem(
        self,
        request: Request[Any, Any, Any],
        problem: service.LinkProblem,
        purpose: str = "activation",
    ) -> Response[Any]:
        """Why a mailed link cannot be used, with a form to ask for a new one."""
        return page(
            request,
            "accounts/link_problem.html",
            {"message": link_problem_message(problem), "purpose": purpose, "form": EmailForm()},
            status_code=410 if problem.reason != "unknown" else 404,
            headers=NO_STORE,
        )

    @post("/activeren-opnieuw")
    async def resend_activation(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        address = client_address(request)

        async def resend(email: str) -> None:
            await service.resend_activation(email, address, settings)

        form, context = EmailForm(await request.form()), {"message": "", "purpose": "activation"}
        done = "/registreren/controleer-je-mailbox"
        return await _mail_request(
            request, "accounts/link_problem.html", form, context, resend, done
        )

    @get("/aanmelden", name="sign_in")
    async def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        melding: FromQuery[str] = "",
        next: FromQuery[str] = "",
    ) -> Response[Any]:
        if current_account(request):
            return redirect(request, safe_next(next, PARTNER_HOME))
        form = SignInForm({"next": next})
        return page(
            request,
            "accounts/sign_in.html",
            {"form": form, "message_key": melding, "not_activated": False},
        )

    @post("/aanmelden")
    async def sign_in(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        form = SignInForm(await request.form())
        context: dict[str, Any] = {"form": form, "message_key": "", "not_activated": False}
        if not (entered := form.validate()):
            return page(request, "accounts/sign_in.html", context, status_code=422)
        try:
            account = await service.sign_in(
                entered.email, entered.password, client_address(request)
            )
        except Blocked as blocked:
            message = too_many_attempts(blocked)
            return too_many(request, "accounts/sign_in.html", context, message, blocked)
        except service.InvalidCredentials:
            form.add_error("password", _("The e-mail address or password is not correct."))
            return page(request, "accounts/sign_in.html", context, status_code=422)
        except service.NotActivated:
            context["not_activated"] = True
            form.add_error(
                "email",
                _(
                    "Your account is not activated yet. Click the link in the"
                    " activation mail, or ask for a new one below."
                ),
            )
            return page(request, "accounts/sign_in.html", context, status_code=422)
        response = redirect(request, safe_next(form.values["next"], PARTNER_HOME))
        await start_session(
            settings,
            response,
            account.account_id,
            previous=request.cookies.get(cookie_name(settings)),
        )
        if account.language != current_language():
            await service.set_language(account.account_id, current_language())
        return response

    @post("/afmelden")
    async def sign_out(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        response = redirect(request, "/aanmelden?melding=afgemeld")
        await end_session(settings, request, response)
        return response

    @get("/wachtwoord-vergeten", name="forgot_password")
    async def forgot_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "accounts/forgot_password.html", {"form": EmailForm()})

    @post("/wachtwoord-vergeten")
    async def forgot(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        address = client_address(request)

        async def ask(email: str) -> None:
            await service.request_password_reset(email, address, settings)

        form, done = EmailForm(await request.form()), "/wachtwoord-vergeten/verstuurd"
        return await _mail_request(request, "accounts/forgot_password.html", form, {}, ask, done)

    @get("/wachtwoord-vergeten/verstuurd")
    async def reset_sent(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "accounts/check_mailbox.html", {"reason": "reset"})

    @get("/wachtwoord-herstellen/{token:str}", name="reset_password")
    async def reset_page(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[Any]:
        try:
            email = await service.check_link(token, service.PASSWORD_RESET)
        except service.LinkProblem as problem:
            return self._link_problem(request, problem, "reset")
        return page(
            request,
            "accounts/reset_password.html",
            {"form": NewPasswordForm(email=email), "token": token, "email": email},
            headers=NO_STORE,
        )

    @post("/wachtwoord-herstellen/{token:str}")
    async def reset(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
        try:
            email = await service.check_link(token, service.PASSWORD_RESET)
        except service.LinkProblem as problem:
            return self._link_problem(request, problem, "reset")
        form = NewPasswordForm(await request.form(), email=email)
        if not (password := form.validate()):
            return page(
                request,
                "accounts/reset_password.html",
                {"form": form, "token": token, "email": email},
                status_code=422,
                headers=NO_STORE,
            )
        try:
            await service.reset_password(token, password)
        except service.LinkProblem as problem:
            return self._link_problem(request, problem, "reset")
        return redirect(request, "/aanmelden?melding=wachtwoord-gewijzigd")
