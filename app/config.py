"""Settings: `litestar.toml` with environment overrides, secrets from the environment only.

Every key of `[section] key` in the file can be overridden by `PORTAL_SECTION_KEY`; the
database URL also by `DATABASE_URL`. A setting that production needs but lacks stops the
start with a clear message instead of falling back to an unsafe default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("nl", "en")
TOKEN_PROFILES = ("identityserver", "rfc9068")
SIGNING_ALGORITHMS = ("ES256", "RS256")
# Where no base URL is configured and no `portal serve` has said where it serves.
DEFAULT_URL = "http://127.0.0.1:8000"


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class PortalSettings:
    brand_name: str = "Informat"
    # Empty: the address `portal serve` serves (see served_url).
    base_url: str = ""
    environment: str = "development"
    default_language: str = "nl"
    support_url: str = "https://www.informat.be/support"
    # Proxies (IP addresses or networks, comma-separated) whose X-Forwarded-For and
    # X-Forwarded-Proto count. Empty: none, so no client can pick its own address.
    trusted_proxies: str = ""
    helpdesk_email: str = "helpdesk@informat.be"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    data_dir: str = ".data/postgres"
    pool_min_size: int = 2
    pool_max_size: int = 10


@dataclass(frozen=True)
class MailSettings:
    backend: str = "mailbox"
    sender: str = "Informat <info@informat.be>"
    # The access requests partners send school administrators come from here (manual §3.4).
    noreply_sender: str = "Informat <noreply@informatsoftware.be>"
    resend_api_url: str = "https://api.resend.com"
    send_timeout_seconds: float = 10.0
    worker_in_process: bool = True
    max_attempts: int = 40
    # Days a sent or failed mail (its links already removed) stays in the outbox for the audit.
    sent_retention_days: int = 90


@dataclass(frozen=True)
class AccountSettings:
    activation_hours: int = 48
    reset_minutes: int = 60
    session_idle_minutes: int = 120
    session_absolute_hours: int = 12
    # Back-office sessions are shorter: staff act on every partner's and school's data.
    staff_session_idle_minutes: int = 30
    staff_session_absolute_hours: int = 8


@dataclass(frozen=True)
class IdentitySettings:
    token_lifetime_seconds: int = 3600
    # How long a retired signing key stays in the JWKS, so tokens it signed still verify.
    retired_key_days: int = 2
    # "identityserver": IdentityServer4/Duende's access tokens (scope a JSON array, no sub);
    # "rfc9068": RFC 9068's (scope one space-separated string, sub = the client id).
    token_profile: str = "identityserver"  # noqa: S105 - a format's name, not a secret
    # "ES256" or "RS256" (2048-bit), for APIs that pin IdentityServer's RS256.
    signing_algorithm: str = "ES256"
    # Clients each process keeps in memory, least recently used forgotten first.
    client_memory_size: int = 200_000
    # Months a secret generated in the portal stays valid (imported and linked ones keep theirs).
    secret_lifetime_months: int = 12
    # Tokenverkeer on the application page: tokens per day, API and school, and why requests
    # failed; counted in memory and written once a second.
    token_diagnostics: bool = True


@dataclass(frozen=True)
class Api:
    """One API of the vendor: a scope is `<scope_prefix>.<institution number>`."""

    key: str
    label: str
    scope_prefix: str
    docs_url: str = ""

    @property
    def resource(self) -> str:
        """The API resource (token audience): the scope prefix up to its first dot."""
        return self.scope_prefix.split(".", 1)[0]


DOCS = "https://www.informat.be/api/"
# The vendor's APIs when litestar.toml lists none; the shipped file lists the same (tested).
DEFAULT_APIS = tuple(
    Api(key, key.capitalize(), f"api_informat_sas_{resource}.{key}", DOCS + key)
    for key, resource in (
        ("leerlingen", "leerlingen"),
        ("voorinschrijvingen", "leerlingen"),
        ("personeel", "personeel"),
        ("internen", "internen"),
        ("rekeningen", "rekeningen"),
    )
)


@dataclass(frozen=True)
class Settings:
    portal: PortalSettings = field(default_factory=PortalSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    apis: tuple[Api, ...] = DEFAULT_APIS
    # Secrets: only ever from the environment.
    secret_key: str = ""
    # Earlier secret keys, while secrets sealed under them are sealed again under the new one.
    previous_secret_keys: tuple[str, ...] = ()
    resend_api_key: str = ""
    # The vendor's APIs authenticate at introspection with these: {resource: secret}.
    api_secrets: dict[str, str] = field(default_factory=dict)
    # False when [portal] base_url was left empty: `portal serve` then fills in its address.
    base_url_given: bool = True

    def api(self, key: str) -> Api | None:
        return next((api for api in self.apis if api.key == key), None)

    @property
    def api_labels(self) -> dict[str, str]:
        """Each API's key and the name pages show for it."""
        return {api.key: api.label for api in self.apis}

    @property
    def production(self) -> bool:
        return self.portal.environment == "production"

    @property
    def embedded_database(self) -> bool:
        return not self.database.url

    @property
    def data_dir(self) -> Path:
        path = Path(self.database.data_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path


def _coerce(value: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
    return value


def _section(cls: type[Any], name: str, values: dict[str, Any], env: dict[str, str]) -> Any:
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {}
    for key in known:
        default = getattr(defaults, key)
        value = values.get(key, default)
        env_name = f"PORTAL_{name}_{key}".upper()
        if env_name in env:
            value = _coerce(env[env_name], default, env_name)
        elif not isinstance(value, type(default)) and not (
            isinstance(default, float) and isinstance(value, int)
        ):
            raise ConfigError(f"[{name}] {key} must be of type {type(default).__name__}")
        merged[key] = value
    return cls(**merged)


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the settings file and apply environment overrides; validate the result."""
    env = dict(os.environ) if env is None else env
    path = path or Path(env.get("PORTAL_CONFIG", PROJECT_ROOT / "litestar.toml"))
    raw: dict[str, Any] = {}
    if path.exists():
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    sections = {
        "portal": PortalSettings,
        "database": DatabaseSettings,
        "mail": MailSettings,
        "accounts": AccountSettings,
        "identity": IdentitySettings,
    }
    apis = _apis(raw.pop("apis", None))
    unknown = set(raw) - set(sections)
    if unknown:
        raise ConfigError(f"unknown section(s) in {path.name}: {', '.join(sorted(unknown))}")
    parts = {name: _section(cls, name, raw.get(name, {}), env) for name, cls in sections.items()}
    if env.get("DATABASE_URL"):
        parts["database"] = dataclasses.replace(parts["database"], url=env["DATABASE_URL"])
    base_url_given = bool(parts["portal"].base_url.strip())
    if not base_url_given:
        parts["portal"] = dataclasses.replace(parts["portal"], base_url=DEFAULT_URL)
    settings = Settings(
        **parts,
        apis=apis,
        secret_key=env.get("PORTAL_SECRET_KEY", ""),
        previous_secret_keys=tuple(
            env.get("PORTAL_PREVIOUS_SECRET_KEYS", "").replace(",", " ").split()
        ),
        resend_api_key=env.get("RESEND_API_KEY", ""),
        api_secrets=_api_secrets(env.get("PORTAL_API_SECRETS", "")),
        base_url_given=base_url_given,
    )
    return _validated(settings)


def _apis(entries: Any) -> tuple[Api, ...]:
    if entries is None:
        return DEFAULT_APIS
    if not isinstance(entries, list) or not entries:
        raise ConfigError("[[apis]] must list at least one API")
    apis = []
    for entry in entries:
        try:
            api = Api(**entry)
        except TypeError as error:
            raise ConfigError(f"[[apis]] entry {entry!r}: {error}") from None
        if not api.key.isidentifier() or "." not in api.scope_prefix:
            raise ConfigError(
                f"[[apis]] {api.key!r}: key must be a name and scope_prefix look like resource.name"
            )
        apis.append(api)
    if len({api.key for api in apis}) != len(apis):
        raise ConfigError("[[apis]] keys must be unique")
    return tuple(apis)


def _api_secrets(value: str) -> dict[str, str]:
    """`resource=secret;resource=secret` from PORTAL_API_SECRETS."""
    secrets_by_resource = {}
    for pair in filter(None, (part.strip() for part in value.split(";"))):
        resource, _, secret = pair.partition("=")
        if not resource or len(secret) < 16:
            raise ConfigError(
                "PORTAL_API_SECRETS: use resource=secret;… with secrets of at least 16 characters"
            )
        secrets_by_resource[resource.strip()] = secret.strip()
    return secrets_by_resource


def _validated(settings: Settings) -> Settings:
    portal, mail = settings.portal, settings.mail
    if portal.environment not in {"development", "production"}:
        raise ConfigError("[portal] environment must be 'development' or 'production'")
    if portal.default_language not in LANGUAGES:
        raise ConfigError(f"[portal] default_language must be one of {', '.join(LANGUAGES)}")
    identity = settings.identity
    if identity.token_profile not in TOKEN_PROFILES:
        raise ConfigError(f"[identity] token_profile must be one of {', '.join(TOKEN_PROFILES)}")
    if identity.signing_algorithm not in SIGNING_ALGORITHMS:
        raise ConfigError(
            f"[identity] signing_algorithm must be one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    if identity.secret_lifetime_months < 1:
        raise ConfigError("[identity] secret_lifetime_months must be at least 1")
    if identity.client_memory_size < 1:
        raise ConfigError("[identity] client_memory_size must be at least 1")
    if mail.sent_retention_days < 1:
        raise ConfigError("[mail] sent_retention_days must be at least 1")
    if mail.backend not in {"mailbox", "resend"}:
        raise ConfigError("[mail] backend must be 'mailbox' or 'resend'")
    if mail.backend == "resend" and not settings.resend_api_key:
        raise ConfigError("the resend mail backend needs RESEND_API_KEY in the environment")
    if settings.production:
        if len(settings.secret_key) < 32:
            raise ConfigError(
                "production needs PORTAL_SECRET_KEY in the environment (at least 32 characters;"
                f" {RANDOM_VALUE_HINT})"
            )
        if weak_secret(settings.secret_key, 96):
            raise ConfigError(
                "PORTAL_SECRET_KEY looks like a placeholder or repeats itself; use a random"
                f" value ({RANDOM_VALUE_HINT})"
            )
        for resource, secret in settings.api_secrets.items():
            if weak_secret(secret, 48):
                raise ConfigError(
                    f"PORTAL_API_SECRETS: the secret of {resource} looks like a placeholder or"
                    f" repeats itself; use a random value ({RANDOM_VALUE_HINT})"
                )
        if mail.backend == "mailbox":
            raise ConfigError("the development mailbox cannot be used in production")
        if not portal.base_url.startswith("https://"):
            raise ConfigError("[portal] base_url must start with https:// in production")
        if not settings.database.url:
            raise ConfigError(
                "production needs DATABASE_URL: the embedded PostgreSQL is for development"
            )
    elif not settings.secret_key:
        settings = dataclasses.replace(settings, secret_key=_development_secret(settings))
    return settings


RANDOM_VALUE_HINT = "for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
PLACEHOLDERS = ("changeme", "change-me", "change_me", "secret", "password", "example", "replace")


def weak_secret(value: str, least_bits: int) -> bool:
    """Whether a secret is a placeholder or has too little randomness to be one.

    The estimate is the string's Shannon entropy times its length: a random token of the
    required length passes easily, "aaaa…", "abcabc…" and "changeme-changeme-…" do not."""
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDERS):
        return True
    counts = Counter(value)
    per_character = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return per_character * len(value) < least_bits


def _development_secret(settings: Settings) -> str:
    """A secret kept beside the embedded database, so that a restart keeps forms valid."""
    path = settings.data_dir.parent / "secret_key"
    try:
        return path.read_text().strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def served_url_file(settings: Settings) -> Path:
    """Where `portal serve` without a base URL writes the address it serves, for the other
    commands (`portal demo`) to print."""
    return settings.data_dir.parent / "served-url"


def public_url(settings: Settings) -> str:
    """The configured base URL, else the address a running `portal serve` announced."""
    if not settings.base_url_given:
        try:
            announced = served_url_file(settings).read_text().strip()
        except FileNotFoundError:
            announced = ""
        if announced:
            return announced
    return settings.portal.base_url.rstrip("/")


@cache
def get_settings() -> Settings:
    return load_settings()
