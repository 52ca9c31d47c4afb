"""Tell every app process when what the token endpoint relies on changes.

Each process keeps the clients it serves in memory (app.identity.cache). A change to a client,
its secrets, its scope grants or its application's status sends the client id on the channel
`identity_changed` when the change commits; a TRUNCATE sends '*' (forget everything). A
rolled-back change sends nothing. "Last used" bookkeeping on a secret is not a change.
"""

from app.db import sql_migration

ID = "2026-11-28T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify app processes of client, secret, scope and application changes"

SQL = """
CREATE FUNCTION identity_notify_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('identity_changed', OLD.client_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('identity_changed', NEW.client_id);
    END IF;
    RETURN NULL;
END $$;

-- client_secret and scope_grant rows point at their client by its serial id.
CREATE FUNCTION identity_notify_client_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('identity_changed', c.client_id) FROM client c WHERE c.id = OLD.client;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('identity_changed', c.client_id) FROM client c WHERE c.id = NEW.client;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION identity_notify_application() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('identity_changed', c.client_id)
        FROM client c WHERE c.application = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION identity_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('identity_changed', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER client_changed
    AFTER INSERT OR DELETE OR UPDATE OF client_id, enabled, application ON client
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client();
CREATE TRIGGER client_secret_changed
    AFTER INSERT OR DELETE OR UPDATE OF client, value_hash, expires_at, revoked_at
    ON client_secret
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client_row();
CREATE TRIGGER scope_grant_changed
    AFTER INSERT OR DELETE OR UPDATE OF client, api, institution_number ON scope_grant
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client_row();
CREATE TRIGGER application_status_changed
    AFTER DELETE OR UPDATE OF status ON application
    FOR EACH ROW EXECUTE FUNCTION identity_notify_application();

CREATE TRIGGER client_truncated AFTER TRUNCATE ON client
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_all();
CREATE TRIGGER client_secret_truncated AFTER TRUNCATE ON client_secret
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_all();
CREATE TRIGGER scope_grant_truncated AFTER TRUNCATE ON scope_grant
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_all();
CREATE TRIGGER application_truncated AFTER TRUNCATE ON application
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_all();
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
