"""One helper decides between a whole page and the fragment an htmx request asked for.

A page template marks each region htmx may replace as a `{% block name %}` whose wrapper
element has `id="name"`. An htmx request that targets that id gets only the block, rendered
from the same template, so no markup exists twice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

VARY = {"Vary": "HX-Request, HX-Target"}


def page(
    request: Request[Any, Any, Any],
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    context = context or {}
    all_headers = {**VARY, **(headers or {})}
    target = _fragment_target(request, template_name)
    if target:
        return HTMXBlockTemplate(
            template_name=template_name,
            block_name=target,
            context=context,
            status_code=status_code,
            headers=all_headers,
        )
    return Template(template_name, context=context, status_code=status_code, headers=all_headers)


def _fragment_target(request: Request[Any, Any, Any], template_name: str) -> str | None:
    if not isinstance(request, HTMXRequest) or not request.htmx or request.htmx.boosted:
        return None
    if request.htmx.history_restore_request:
        # The back button after a fragment swap: htmx wants the whole page.
        return None
    target = request.htmx.target
    if not target:
        return None
    engine = request.app.template_engine
    if engine is None:
        return None
    template = engine.engine.get_template(template_name)
    return target if target in template.blocks else None


def redirect(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """After a successful form post: a 303 for plain forms, a full navigation for htmx."""
    if isinstance(request, HTMXRequest) and request.htmx:
        return Response(content=b"", status_code=204, headers={"HX-Redirect": url, **VARY})
    return Redirect(url, status_code=HTTP_303_SEE_OTHER, headers=VARY)


def safe_next(url: str | None, default: str) -> str:
    """A local path to return to after sign-in; anything pointing elsewhere is ignored."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return default
    if "\\" in url or any(ord(char) < 32 for char in url):
        return default
    return url
