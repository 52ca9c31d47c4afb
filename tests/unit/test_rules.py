"""Rules that need no database: settings, password policy, throttling, redirects, catalogs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.accounts.passwords import common_passwords, password_problems
from app.config import ConfigError, load_settings, public_url, served_url_file
from app.throttle import SIGN_IN_ACCOUNT
from app.web.catalogs import extract, read, untranslated
from app.web.i18n import use_language
from app.web.render import safe_next


def test_settings_come_from_the_file_with_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "portal.toml"
    path.write_text('[portal]\nbrand_name = "Schoolsoft"\n[mail]\nmax_attempts = 3\n')
    settings = load_settings(
        path,
        env={
            "PORTAL_MAIL_MAX_ATTEMPTS": "7",
            "DATABASE_URL": "postgresql://db/portal",
            "PORTAL_SECRET_KEY": "k",
        },
    )
    assert settings.portal.brand_name == "Schoolsoft"
    assert settings.mail.max_attempts == 7
    assert settings.database.url == "postgresql://db/portal"
    assert not settings.embedded_database


def test_the_shipped_settings_file_is_complete() -> None:
    settings = load_settings(env={"PORTAL_SECRET_KEY": "k"})
    assert settings.portal.brand_name == "Informat"
    assert settings.mail.backend == "mailbox"


STRONG_KEY = "q3LrY0x_8ZmT2vNcKpW7eHs4JdUaGb9f-Fo1RiXt"  # as secrets.token_urlsafe makes them
PRODUCTION = {
    "PORTAL_PORTAL_ENVIRONMENT": "production",
    "PORTAL_PORTAL_BASE_URL": "https://p.example",
    "PORTAL_MAIL_BACKEND": "resend",
    "RESEND_API_KEY": "re_x",
    "DATABASE_URL": "postgresql://db/portal",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORTAL_PORTAL_ENVIRONMENT": "production"}, "PORTAL_SECRET_KEY"),
        ({**PRODUCTION, "PORTAL_SECRET_KEY": "a" * 32}, "PORTAL_SECRET_KEY looks like"),
        ({**PRODUCTION, "PORTAL_SECRET_KEY": "abc" * 16}, "PORTAL_SECRET_KEY looks like"),
        (
            {**PRODUCTION, "PORTAL_SECRET_KEY": "changeme-" + STRONG_KEY},
            "PORTAL_SECRET_KEY looks like",
        ),
        (
            {
                **PRODUCTION,
                "PORTAL_SECRET_KEY": STRONG_KEY,
                "PORTAL_API_SECRETS": "leerlingen=" + "a" * 16,
            },
            "PORTAL_API_SECRETS: the secret of leerlingen",
        ),
        ({"PORTAL_MAIL_BACKEND": "resend"}, "RESEND_API_KEY"),
        ({"PORTAL_MAIL_MAX_ATTEMPTS": "many"}, "whole number"),
        (
            {
                "PORTAL_PORTAL_ENVIRONMENT": "production",
                "PORTAL_SECRET_KEY": STRONG_KEY,
                "PORTAL_PORTAL_BASE_URL": "https://p.example",
            },
            "mailbox",
        ),
        ({"PORTAL_IDENTITY_TOKEN_PROFILE": "jwt"}, "token_profile"),
        ({"PORTAL_IDENTITY_SIGNING_ALGORITHM": "HS256"}, "signing_algorithm"),
        ({"PORTAL_IDENTITY_CLIENT_MEMORY_SIZE": "0"}, "client_memory_size"),
        # No base URL: not even production may fall back to the development address.
        (
            {
                "PORTAL_PORTAL_ENVIRONMENT": "production",
                "PORTAL_SECRET_KEY": STRONG_KEY,
                "PORTAL_MAIL_BACKEND": "resend",
                "RESEND_API_KEY": "re_x",
                "DATABASE_URL": "postgresql://db/portal",
            },
            "base_url must start with https://",
        ),
    ],
)
def test_a_missing_or_bad_setting_stops_the_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_production_starts_with_random_secrets() -> None:
    settings = load_settings(
        env={
            **PRODUCTION,
            "PORTAL_SECRET_KEY": STRONG_KEY,
            "PORTAL_API_SECRETS": "leerlingen=9f2c4e1ab7d05e38",
        }
    )
    assert settings.production and settings.api_secrets == {"leerlingen": "9f2c4e1ab7d05e38"}


def test_without_a_base_url_other_commands_use_the_address_served(tmp_path: Path) -> None:
    settings = load_settings(
        env={"PORTAL_SECRET_KEY": "k", "PORTAL_DATABASE_DATA_DIR": str(tmp_path / "postgres")}
    )
    assert not settings.base_url_given
    assert public_url(settings) == "http://127.0.0.1:8000"
    served_url_file(settings).write_text("http://127.0.0.1:8777\n")
    assert public_url(settings) == "http://127.0.0.1:8777"
    configured = load_settings(
        env={
            "PORTAL_SECRET_KEY": "k",
            "PORTAL_DATABASE_DATA_DIR": str(tmp_path / "postgres"),
            "PORTAL_PORTAL_BASE_URL": "https://partners.example/",
        }
    )
    assert public_url(configured) == "https://partners.example"


def test_the_built_in_apis_are_the_shipped_ones() -> None:
    """Without [[apis]] in the settings file the portal knows the same APIs, links included."""
    from app.config import DEFAULT_APIS

    assert load_settings(env={"PORTAL_SECRET_KEY": "k"}).apis == DEFAULT_APIS


def test_unknown_keys_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "portal.toml"
    path.write_text("[mail]\nbakend = 'resend'\n")
    with pytest.raises(ConfigError, match="bakend"):
        load_settings(path, env={})


def test_password_rules_follow_the_manual() -> None:
    assert password_problems("Sterk!Wachtwoord9") == []
    assert len(password_problems("kort")) == 4  # length, capital, digit, special
    assert password_problems("Welkom!2026school", "welkom!2026school") != []
    assert len(common_passwords()) >= 10_000
    with use_language("en"):
        assert password_problems("P@ssw0rd") == [
            "This password is too common and easy to guess. Choose another."
        ]


def test_failures_back_off_to_a_short_maximum() -> None:
    assert SIGN_IN_ACCOUNT.block_for(5) == dt.timedelta(0)
    assert SIGN_IN_ACCOUNT.block_for(6) == dt.timedelta(seconds=30)
    assert SIGN_IN_ACCOUNT.block_for(7) == dt.timedelta(seconds=60)
    assert SIGN_IN_ACCOUNT.block_for(500) == dt.timedelta(minutes=5)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/partnerzone", "/partnerzone"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        ("partnerzone", "/"),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(target: str, expected: str) -> None:
    assert safe_next(target, "/") == expected


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_string_is_translated(language: str) -> None:
    catalog = read(language)
    known = {message.id for message in catalog if message.id}
    used = {message.id for message in extract() if message.id}
    assert used - known == set(), "run `uv run portal translations` and translate"
    assert untranslated(catalog) == []


def test_the_quick_migration_check_knows_every_migration() -> None:
    """`migrate` skips Piccolo when every id it reads from the files has run: it must read
    the same ids Piccolo would."""
    import importlib.util

    from app.config import PROJECT_ROOT
    from app.db import migration_ids

    ids = set()
    for path in sorted((PROJECT_ROOT / "migrations").glob("portal_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ids.add(module.ID)
    assert len(ids) >= 11
    assert migration_ids() == ids


def test_a_client_address_is_an_ip_address_or_unknown() -> None:
    from app.web.addresses import address_of

    assert address_of(("192.0.2.1", 5000)) == "192.0.2.1"
    assert address_of(("2001:DB8::1", 5000)) == "2001:db8::1"
    assert address_of(("1" * 4000, 0)) == "unknown"
    assert address_of(("evil; DROP", 0)) == "unknown"
    assert address_of(None) == "unknown"
