"""The tables are the schema: every Piccolo table class declares exactly the columns the
migrations make, with the same kind of type and nullability, and every table the migrations
make has a class. A fresh database is migrated (the test session's) and compared with
information_schema, so the two can never drift apart; a second test shows that a column
missing from a class is caught."""

from __future__ import annotations

from typing import Any

import pytest
from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Bytea,
    Char,
    Date,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.piccolo_app import APP_CONFIG

pytestmark = pytest.mark.anyio
# Piccolo's own bookkeeping, not the portal's schema.
NOT_OURS = {"migration"}
# information_schema's data_type for each column class.
TYPES: dict[type, set[str]] = {
    Char: {"character"},
    Varchar: {"character varying"},
    Text: {"text"},
    Integer: {"integer"},
    Serial: {"integer"},
    SmallInt: {"smallint"},
    BigInt: {"bigint"},
    BigSerial: {"bigint"},
    Boolean: {"boolean"},
    Timestamptz: {"timestamp with time zone"},
    Date: {"date"},
    UUID: {"uuid"},
    JSONB: {"jsonb"},
    Bytea: {"bytea"},
}


def declared(table: type[Table]) -> dict[str, tuple[set[str], bool, int | None]]:
    """Column name: (the data types it may have, whether it may be NULL, its length)."""
    found = {}
    for column in table._meta.columns:
        kind = type(column)
        if isinstance(column, ForeignKey):
            target = column._foreign_key_meta.resolved_references._meta.primary_key
            kind = {Serial: Integer, BigSerial: BigInt}.get(type(target), type(target))
        # The most specific class that names a type (BigSerial before Serial, Char before Varchar).
        types = next((TYPES[cls] for cls in kind.__mro__ if cls in TYPES), {"?"})
        length = getattr(column, "length", None) if isinstance(column, Varchar) else None
        found[column._meta.db_column_name] = (types, bool(column._meta.null), length)
    return found


async def schema_problems(tables: list[type[Table]]) -> list[str]:
    rows: list[dict[str, Any]] = await Table.raw(  # type: ignore[misc]
        "SELECT table_name, column_name, data_type, is_nullable, character_maximum_length"
        " FROM information_schema.columns"
        # Generated columns are the database's own (search text, name keys): never written.
        " WHERE table_schema = 'public' AND is_generated = 'NEVER'"
    )
    actual: dict[str, dict[str, tuple[str, bool, int | None]]] = {}
    for row in rows:
        if row["table_name"] not in NOT_OURS:
            actual.setdefault(row["table_name"], {})[row["column_name"]] = (
                row["data_type"],
                row["is_nullable"] == "YES",
                row["character_maximum_length"],
            )
    problems = []
    classes = {table._meta.tablename: table for table in tables}
    for name in sorted(set(actual) - set(classes)):
        problems.append(f"{name}: a table without a class")
    for name, table in sorted(classes.items()):
        columns = actual.get(name)
        if columns is None:
            problems.append(f"{name}: a class without a table")
            continue
        wanted = declared(table)
        for column in sorted(set(columns) - set(wanted)):
            problems.append(f"{name}.{column}: in the database, not in {table.__name__}")
        for column in sorted(set(wanted) - set(columns)):
            problems.append(f"{name}.{column}: in {table.__name__}, not in the database")
        for column in sorted(set(wanted) & set(columns)):
            (types, null, length), (data_type, nullable, size) = wanted[column], columns[column]
            if data_type not in types:
                problems.append(f"{name}.{column}: {data_type} in the database, {types} declared")
            elif length is not None and length != size:
                # The class's length is the one forms and templates read: it must be the table's.
                problems.append(
                    f"{name}.{column}: length {size} in the database, {length} in the class"
                )
            if null != nullable and column != table._meta.primary_key._meta.db_column_name:
                problems.append(
                    f"{name}.{column}: {'NULL' if nullable else 'NOT NULL'} in the database,"
                    f" {'null' if null else 'not null'} declared"
                )
    return problems


async def test_every_table_class_is_its_table(app: Any) -> None:
    problems = await schema_problems(APP_CONFIG.table_classes)
    assert problems == [], "\n".join(problems)


async def test_a_column_missing_from_a_class_is_caught(app: Any) -> None:
    class ThinThrottle(Table, tablename="throttle"):  # the real one, without most columns
        key = Varchar(length=300, primary_key=True)
        failures = Text()

    others = [table for table in APP_CONFIG.table_classes if table._meta.tablename != "throttle"]
    problems = await schema_problems([*others, ThinThrottle])
    assert "throttle.window_started_at: in the database, not in ThinThrottle" in problems
    assert any(
        problem.startswith("throttle.failures: integer in the database") for problem in problems
    )
