"""A deactivated partner's applications get no tokens: tell every app process when a
partner's active flag changes, as for the other things the token endpoint relies on."""

from app.db import sql_migration

ID = "2026-11-28T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify app processes when a partner is deactivated or reactivated"

SQL = """
CREATE FUNCTION identity_notify_partner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('identity_changed', c.client_id)
        FROM application a JOIN client c ON c.application = a.id
        WHERE a.partner = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER partner_active_changed
    AFTER UPDATE OF active ON partner
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active)
    EXECUTE FUNCTION identity_notify_partner();

-- The helpdesk's search reads applications by status.
CREATE INDEX application_status ON application (status, submitted_at);
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
