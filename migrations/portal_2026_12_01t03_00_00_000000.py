"""Token traffic for the application page: tokens per client, day and the scopes they carried
(taken apart into APIs and schools when the page is read, so that writing costs one row per
client), and the newest failures of each client with their cause (never a presented secret)."""

from app.db import sql_migration

ID = "2026-12-01T03:00:00:000000"
DESCRIPTION = "token traffic: counters per client, day and scopes; the last failures"

SQL = """
CREATE TABLE token_day (
    client integer NOT NULL REFERENCES client (id) ON DELETE CASCADE,
    day date NOT NULL,
    scopes text NOT NULL,
    tokens integer NOT NULL,
    PRIMARY KEY (client, day, scopes)
);

CREATE TABLE token_failure (
    id bigserial PRIMARY KEY,
    client integer NOT NULL REFERENCES client (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    cause varchar(40) NOT NULL,
    address varchar(64) NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX token_failure_client_at ON token_failure (client, at DESC);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
