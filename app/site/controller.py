"""Public pages: the landing page, terms, privacy policy, the language switch, health."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery

from app.accounts import service as accounts
from app.config import LANGUAGES
from app.partners import directory
from app.partners import service as partners
from app.piccolo_conf import DB
from app.web.controllers import AppSettings
from app.web.i18n import LANGUAGE_COOKIE
from app.web.inputs import page_number
from app.web.render import page, redirect, safe_next
from app.web.sessions import current_account
from app.web.templating import ASSETS


class SiteController(Controller):
    @get("/", name="home")
    async def home(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str] = "",
        categorie: FromQuery[str] = "",
        pagina: FromQuery[str] = "1",
    ) -> Response[Any]:
        """The landing page with the partner directory; the URL holds search and filter."""
        number = page_number(pagina)
        result = await directory.search(q, categorie, number)

        def page_url(n: int) -> str:
            params = {
                key: value
                for key, value in (("q", q.strip()), ("categorie", categorie), ("pagina", str(n)))
                if value and (key != "pagina" or n > 1)
            }
            return "/?" + urlencode(params) + "#partners" if params else "/#partners"

        return page(
            request,
            "site/home.html",
            {
                "result": result,
                "query": q,
                "category": categorie,
                "page_url": page_url,
                "categories": await partners.all_categories(),
            },
        )

    @get("/voorwaarden", name="terms")
    async def terms(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "site/terms.html")

    @get("/privacybeleid", name="privacy")
    async def privacy(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "site/privacy.html")

    @post("/taal", name="language")
    async def language(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        form = await request.form()
        language = form.get("language", "")
        response = redirect(request, safe_next(form.get("next"), "/"))
        if language in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE,
                language,
                max_age=365 * 24 * 3600,
                path="/",
                samesite="lax",
                secure=settings.production,
                httponly=True,
            )
            account = current_account(request)
            if account:
                await accounts.set_language(account.id, language)
        return response

    @get("/favicon.ico", name="favicon", include_in_schema=False)
    async def favicon(self) -> Response[bytes]:
        """Browsers ask for this path on pages without an icon link (mails, JSON)."""
        return Response(
            (ASSETS / "img" / "favicon.svg").read_bytes(),
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @get("/health", name="health", cache_control=None)
    async def health(self) -> Response[dict[str, str]]:
        try:
            await DB.run_ddl("SELECT 1")
        except Exception:
            return Response(
                {"status": "unavailable", "database": "down"},
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        return Response({"status": "ok", "database": "up"}, headers={"Cache-Control": "no-store"})
