"""Keeping the translation catalogs in step with the code and templates.

`portal translations` extracts every message id, adds new ones to both catalogs (English gets
its own text, Dutch an empty entry to fill in) and drops ids no longer used. The test suite
fails while any entry is empty.
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from app.config import LANGUAGES, PROJECT_ROOT
from app.web.i18n import catalog_path

METHODS = [
    ("app/**.py", "python"),
    ("templates/**.html", "jinja2.ext:babel_extract"),
    ("templates/**.txt", "jinja2.ext:babel_extract"),
    ("components/**.html", "jinja2.ext:babel_extract"),
]
OPTIONS = {
    pattern: {"extensions": "jinja2.ext.do"}
    for pattern, method in METHODS
    if method.startswith("jinja2")
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    catalog = Catalog(project="partnerportaal", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PROJECT_ROOT), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def read(language: str) -> Catalog:
    with open(catalog_path(language), "rb") as handle:
        return read_po(handle, locale=language)


def update() -> dict[str, int]:
    """Bring both catalogs up to date; returns how many entries each still lacks."""
    template = extract()
    missing = {}
    for language in LANGUAGES:
        try:
            catalog = read(language)
        except FileNotFoundError:
            catalog = Catalog(locale=language, project="partnerportaal", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        for message in catalog:
            if message.id and language == "en" and not _filled(message.string):
                message.string = message.id
        path = catalog_path(language)
        (PROJECT_ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            write_po(
                handle,
                catalog,
                width=100,
                sort_output=True,
                omit_header=False,
                include_lineno=False,
            )
        missing[language] = len(untranslated(catalog))
    return missing


def _filled(string: object) -> bool:
    if isinstance(string, tuple | list):
        return all(string)
    return bool(string)


def untranslated(catalog: Catalog) -> list[str]:
    return [
        str(message.id)
        for message in catalog
        if message.id and (not _filled(message.string) or message.fuzzy)
    ]
