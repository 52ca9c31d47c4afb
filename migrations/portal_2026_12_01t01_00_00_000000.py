"""New clients, secrets and scope grants are announced once per statement, not once per row.

Migration t04's triggers send a client id on `identity_changed` for every row that changes.
Importing tens of thousands of clients inserts hundreds of thousands of rows in one
transaction, and the row triggers cost about as much as the rows themselves. For INSERT, a
statement trigger with a transition table sends each client id of the statement once;
what every process hears, and when (at commit), is unchanged. Updates and deletes keep their
row triggers (a transition table cannot go with the column list of UPDATE OF).
"""

from app.db import sql_migration

ID = "2026-12-01T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "announce inserted clients, secrets and scope grants once per statement"

SQL = """
CREATE FUNCTION identity_notify_inserted_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('identity_changed', n.client_id)
        FROM (SELECT DISTINCT client_id FROM added) n;
    RETURN NULL;
END $$;

CREATE FUNCTION identity_notify_inserted_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('identity_changed', c.client_id)
        FROM client c WHERE c.id IN (SELECT client FROM added);
    RETURN NULL;
END $$;

DROP TRIGGER client_changed ON client;
CREATE TRIGGER client_changed
    AFTER DELETE OR UPDATE OF client_id, enabled, application ON client
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client();
CREATE TRIGGER client_inserted AFTER INSERT ON client
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_inserted_clients();

DROP TRIGGER client_secret_changed ON client_secret;
CREATE TRIGGER client_secret_changed
    AFTER DELETE OR UPDATE OF client, value_hash, expires_at, revoked_at ON client_secret
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client_row();
CREATE TRIGGER client_secret_inserted AFTER INSERT ON client_secret
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_inserted_rows();

DROP TRIGGER scope_grant_changed ON scope_grant;
CREATE TRIGGER scope_grant_changed
    AFTER DELETE OR UPDATE OF client, api, institution_number ON scope_grant
    FOR EACH ROW EXECUTE FUNCTION identity_notify_client_row();
CREATE TRIGGER scope_grant_inserted AFTER INSERT ON scope_grant
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION identity_notify_inserted_rows();
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
