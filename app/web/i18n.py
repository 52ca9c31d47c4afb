"""Translations: every user-facing string goes through gettext.

Message ids are English; `app/locale/<lang>/LC_MESSAGES/messages.po` holds the Dutch (nl-BE)
and English texts. The catalogs are compiled in memory at start-up, so no binary .mo file is
kept in the repository. The language of the current request (or of the e-mail being written)
lives in a context variable, so `gettext` needs no request argument.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gettext as stdlib_gettext
import io
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.config import LANGUAGES, PROJECT_ROOT

LOCALE_DIR = PROJECT_ROOT / "app" / "locale"
HTML_LANG = {"nl": "nl-BE", "en": "en"}
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}

_current: ContextVar[str] = ContextVar("language", default="nl")


def catalog_path(language: str) -> str:
    return str(LOCALE_DIR / language / "LC_MESSAGES" / "messages.po")


@cache
def translations(language: str) -> stdlib_gettext.GNUTranslations:
    with open(catalog_path(language), "rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return stdlib_gettext.GNUTranslations(buffer)


def current_language() -> str:
    return _current.get()


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    token = _current.set(language if language in LANGUAGES else "nl")
    try:
        yield
    finally:
        _current.reset(token)


def set_language(language: str) -> None:
    """Set the language for the rest of the current task (a request)."""
    _current.set(language if language in LANGUAGES else "nl")


def gettext(message: str, **variables: object) -> str:
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


# The vendor, its helpdesk and the schools are in Belgium: times are shown in Belgian time
# (stored in UTC). tzdata is a dependency, so slim images without a zone database work too.
LOCAL_TIME = ZoneInfo("Europe/Brussels")


def local_time(value: dt.datetime) -> str:
    """A moment as shown on pages and in messages: 28/11/2026 14:05, Belgian time."""
    return value.astimezone(LOCAL_TIME).strftime("%d/%m/%Y %H:%M")


def local_date(value: dt.datetime | dt.date) -> str:
    """A day as shown on pages: 28/11/2026 (a moment in Belgian time)."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(LOCAL_TIME)
    return value.strftime("%d/%m/%Y")


def duration(seconds: int) -> str:
    """A waiting time as people say it: minutes, then hours, then days."""
    minutes = max(1, int(seconds) // 60)
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    return ngettext("%(num)d day", "%(num)d days", hours // 24)


def translations_gettext(message: str) -> str:
    """Plain lookup, for Jinja's i18n extension (which formats the variables itself)."""
    return translations(_current.get()).gettext(message)


def translations_ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


LANGUAGE_COOKIE = "portal_language"


def language_for(cookies: dict[str, str], default: str) -> str:
    """The visitor's choice from the language switch, else the portal's default."""
    chosen = cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else default


def N_(message: str) -> str:  # noqa: N802 - the conventional name for a gettext marker
    """Marks a message id for extraction where it is translated later (e-mail subjects)."""
    return message
