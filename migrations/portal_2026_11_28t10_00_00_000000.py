"""Staff's second-factor secrets are stored sealed (app.crypto.Sealer), which is longer than
the 32 base32 characters a plain secret took."""

from app.db import sql_migration

ID = "2026-11-28T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "room for sealed TOTP secrets"

SQL = """
ALTER TABLE staff ALTER COLUMN totp_secret TYPE text;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
