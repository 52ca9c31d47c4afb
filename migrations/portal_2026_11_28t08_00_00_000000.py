"""The helpdesk's search: trigram indexes, so that a name or client id fragment is found
without reading every partner, application and client."""

from app.db import sql_migration

ID = "2026-11-28T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trigram indexes for the helpdesk's search"

SQL = """
CREATE INDEX partner_name_search ON partner USING gin (name gin_trgm_ops);
CREATE INDEX application_name_search ON application USING gin (name gin_trgm_ops);
CREATE INDEX client_id_search ON client USING gin (client_id gin_trgm_ops);
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
