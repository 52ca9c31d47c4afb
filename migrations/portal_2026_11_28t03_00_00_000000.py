"""The identity server: clients, their secrets, scope grants and signing keys; and the
application fields of the manual (description, contact, API access, rejection reason)."""

from app.db import sql_migration

ID = "2026-11-28T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "clients, secrets, scope grants, signing keys, application details"

SQL = """
ALTER TABLE application
    ADD COLUMN description varchar(2000) NOT NULL DEFAULT '',
    ADD COLUMN contact_person varchar(200) NOT NULL DEFAULT '',
    ADD COLUMN contact_email varchar(320) NOT NULL DEFAULT '',
    ADD COLUMN rejection_reason varchar(2000) NOT NULL DEFAULT '',
    ADD COLUMN created_by uuid REFERENCES account (id) ON DELETE SET NULL,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Which APIs an application asks for; school administrators can grant only these.
CREATE TABLE application_api (
    application uuid NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    api varchar(40) NOT NULL,
    PRIMARY KEY (application, api)
);

CREATE TABLE client (
    id serial PRIMARY KEY,
    client_id varchar(200) NOT NULL UNIQUE,
    enabled boolean NOT NULL DEFAULT true,
    -- A client belongs to at most one application, and an application has at most one
    -- client. A client imported from the existing identity server has none until its
    -- partner links it, and keeps working meanwhile.
    application uuid UNIQUE REFERENCES application (id) ON DELETE SET NULL,
    description varchar(200) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE client_secret (
    id serial PRIMARY KEY,
    client integer NOT NULL REFERENCES client (id) ON DELETE CASCADE,
    -- IdentityServer's format: base64 of the SHA-256 of the secret.
    value_hash varchar(64) NOT NULL,
    description varchar(200) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX client_secret_client ON client_secret (client);

CREATE TABLE scope_grant (
    id bigserial PRIMARY KEY,
    client integer NOT NULL REFERENCES client (id) ON DELETE CASCADE,
    api varchar(40) NOT NULL,
    institution_number varchar(20) NOT NULL,
    granted_by varchar(320) NOT NULL DEFAULT '',
    granted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client, api, institution_number)
);
CREATE INDEX scope_grant_institution ON scope_grant (institution_number, api);

CREATE TABLE signing_key (
    kid varchar(64) PRIMARY KEY,
    algorithm varchar(10) NOT NULL DEFAULT 'ES256',
    private_pem text NOT NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set when a newer key takes over signing; published until unpublish_at.
    retired_at timestamptz,
    unpublish_at timestamptz
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_key_current ON signing_key ((true)) WHERE retired_at IS NULL;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
