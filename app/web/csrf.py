"""CSRF protection for every form: a token bound to the session, a cookie only where a form is.

Every state-changing request (except the identity server's credential endpoints, which read no
cookie) must carry the page's token, as the `_csrf_token` field or the `x-csrftoken` header that
htmx sends. The token is:

- for a signed-in visitor (a partner's or a staff member's session cookie), an HMAC of the
  session cookies under the secret key: bound to the session, so a token planted from elsewhere
  or kept from before signing in is worthless, and a new session brings a new token;
- for a visitor without a session (the sign-in and registration forms), a random value signed
  under the secret key and also kept in a cookie (double submit).

The cookie is set only on answers whose page used the token (an HTML page with a form), never
on static files, logos or other publicly cacheable answers, where a shared cache could hand one
token to many visitors. In production it has the `__Host-` prefix: Secure, this host only, the
whole site. When an answer starts or ends a session, the cookie follows at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FIELD = "_csrf_token"
HEADER = "x-csrftoken"
STATE_KEY = "portal.csrf"


def cookie_name(settings: Settings) -> str:
    return "__Host-csrftoken" if settings.production else "csrftoken"


class RequestToken:
    """The token this request's pages carry, and whether a page used it."""

    __slots__ = ("used", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.used = False


def template_token(context: Mapping[str, Any], /) -> str:
    """`csrf_token()` in templates: the token, remembered as used so the answer sets its cookie."""
    request = context.get("request")
    token: RequestToken | None = request.scope.get(STATE_KEY) if request is not None else None
    if token is None:
        return ""
    token.used = True
    return token.value


class CsrfMiddleware(ASGIMiddleware):
    exclude_opt_key = "exclude_from_csrf"

    def __init__(self, settings: Settings, session_cookies: tuple[str, ...]) -> None:
        self.key = hashlib.sha256(b"csrf|" + settings.secret_key.encode()).digest()
        self.cookie = cookie_name(settings)
        self.secure = settings.production
        self.session_cookies = session_cookies

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive)
        cookies = request.cookies
        expected = self._expected(cookies)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(HEADER)
            if sent is None and request.content_type[0] in {
                RequestEncodingType.URL_ENCODED,
                RequestEncodingType.MULTI_PART,
            }:
                form = await request.form()
                field = form.get(FIELD)
                sent = field if isinstance(field, str) else None
            if not sent or expected is None or not hmac.compare_digest(sent, expected):
                raise PermissionDeniedException("CSRF token verification failed")
        token = RequestToken(expected or self._anonymous())
        scope[STATE_KEY] = token  # type: ignore[literal-required]
        held = cookies.get(self.cookie)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._follow(message, cookies, token, held)
            await send(message)

        await next_app(scope, receive, send_with_cookie)

    def _follow(
        self, message: Message, cookies: Mapping[str, str], token: RequestToken, held: str | None
    ) -> None:
        headers = MutableScopeHeaders.from_message(message)
        changed = _session_cookies_set(headers.getall("set-cookie", []), self.session_cookies)
        if changed:
            # Signing in or out: the page after it carries the token of the new state.
            after = {**cookies, **changed}
            value = self._bound(after) if self._has_session(after) else None
            if value is None:
                headers.add("set-cookie", self._cookie("", max_age=0))
            elif value != held:
                headers.add("set-cookie", self._cookie(value))
        elif token.used and token.value != held:
            headers.add("set-cookie", self._cookie(token.value))

    def _cookie(self, value: str, max_age: int | None = None) -> str:
        return Cookie(
            key=self.cookie,
            value=value,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
            max_age=max_age,
        ).to_header(header="")

    def _has_session(self, cookies: Mapping[str, str]) -> bool:
        return any(cookies.get(name) for name in self.session_cookies)

    def _expected(self, cookies: Mapping[str, str]) -> str | None:
        """The token this request must carry: bound to its sessions, or its signed cookie."""
        if self._has_session(cookies):
            return self._bound(cookies)
        held = cookies.get(self.cookie, "")
        nonce, _, signature = held.partition(".")
        if nonce and hmac.compare_digest(signature, self._sign("anonymous|" + nonce)):
            return held
        return None

    def _bound(self, cookies: Mapping[str, str]) -> str:
        sessions = "|".join(
            hashlib.sha256(cookies.get(name, "").encode()).hexdigest()
            for name in self.session_cookies
        )
        return self._sign("session|" + sessions)

    def _anonymous(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign('anonymous|' + nonce)}"

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:48]


def _session_cookies_set(set_cookies: list[str], names: tuple[str, ...]) -> dict[str, str]:
    """The session cookies this answer sets ('' for one it deletes)."""
    changed: dict[str, str] = {}
    for header in set_cookies:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            if name in names:
                deleted = morsel["max-age"] in {"0", "-1"} or morsel["expires"].startswith(
                    "Thu, 01 Jan 1970"
                )
                changed[name] = "" if deleted else morsel.value
    return changed
