"""The scope format of the real system: `<API's scope prefix>.<institution number>`, for
example `api_informat_sas_leerlingen.leerlingen.123456` (the catalogue is in the settings).

Its own module, so that `portal clients import` reads 50,000 clients' scopes without loading
the token endpoint.
"""

from __future__ import annotations

from app.config import Api, Settings


def scope_string(api: Api, institution_number: str) -> str:
    return f"{api.scope_prefix}.{institution_number}"


def parse_scope(settings: Settings, scope: str) -> tuple[str, str] | None:
    """(api key, institution number) of a scope string, or None if it names no known API."""
    prefix, _, institution = scope.rpartition(".")
    api = next((api for api in settings.apis if api.scope_prefix == prefix), None)
    if api is None or not institution:
        return None
    return api.key, institution
