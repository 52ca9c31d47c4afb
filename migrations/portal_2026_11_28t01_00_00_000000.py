"""Accounts, e-mailed tokens, sessions, rate-limit counters and the mail outbox."""

from app.db import sql_migration

ID = "2026-11-28T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts, sessions, throttles, outbox"

SQL = """
CREATE TABLE account (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(320) NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash text NOT NULL,
    language varchar(5) NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en')),
    activated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE account_token (
    id serial PRIMARY KEY,
    account uuid NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    purpose varchar(20) NOT NULL CHECK (purpose IN ('activation', 'password_reset')),
    token_hash varchar(64) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX account_token_account ON account_token (account, purpose);

CREATE TABLE web_session (
    id_hash varchar(64) PRIMARY KEY,
    account_id uuid REFERENCES account (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX web_session_account ON web_session (account_id);
CREATE INDEX web_session_expires ON web_session (expires_at);

CREATE TABLE throttle (
    key text PRIMARY KEY,
    failures integer NOT NULL DEFAULT 0,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    blocked_until timestamptz
);

CREATE TABLE outbox_mail (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    kind varchar(40) NOT NULL,
    sender text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    html text NOT NULL,
    text text NOT NULL,
    idempotency_key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    failed_at timestamptz,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_mail_pending ON outbox_mail (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
