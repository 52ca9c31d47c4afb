"""The Jinja environment: templates/ for pages, components/ for macros, gettext for text."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from app.config import PROJECT_ROOT, Settings
from app.web import csrf, i18n

TEMPLATES = PROJECT_ROOT / "templates"
COMPONENTS = PROJECT_ROOT / "components"
ASSETS = PROJECT_ROOT / "assets"


@cache
def asset_version(relative: str) -> str:
    return hashlib.sha256((ASSETS / relative).read_bytes()).hexdigest()[:12]


def asset(relative: str) -> str:
    """URL of a file under assets/, with a content hash so it can be cached for a year."""
    return f"/static/{relative}?v={asset_version(relative)}"


def make_environment(settings: Settings) -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(TEMPLATES), str(COMPONENTS)]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.translations_gettext, ngettext=i18n.translations_ngettext, newstyle=True
    )
    env.filters.update(
        when=i18n.local_time, day=i18n.local_date, parse_time=dt.datetime.fromisoformat
    )
    env.globals.update(
        brand=settings.portal.brand_name,
        support_url=settings.portal.support_url,
        development=not settings.production,
        mailbox_enabled=settings.mail.backend == "mailbox",
        asset=asset,
        current_language=i18n.current_language,
        duration=i18n.duration,
        html_lang=lambda: i18n.HTML_LANG[i18n.current_language()],
        language_names=i18n.LANGUAGE_NAMES,
    )
    return env


def template_config(env: Environment) -> TemplateConfig[JinjaTemplateEngine]:
    engine = JinjaTemplateEngine.from_environment(env)
    # The portal's own CSRF token (app.web.csrf), in place of Litestar's.
    engine.register_template_callable("csrf_token", csrf.template_token)
    return TemplateConfig(instance=engine)
