"""Versioned SQL migrations: `deploy/migrations/NNNN_name.sql`, applied once each, in order.

Each file runs in its own transaction together with its row in `schema_migrations`, so a
migration is either wholly applied and recorded or not at all. A session advisory lock
serializes every process that migrates the same database (two workers starting at once):
the second waits, then finds nothing left to apply. A file already applied must not
change; its checksum is recorded and a changed file stops the migration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# Any constant works; it only has to be the same for every process migrating a database.
_MIGRATION_LOCK_KEY = 0x7265_6675_6E64_73  # "refunds"
_MIGRATION_FILE = re.compile(r"^(\d{4}_[a-z0-9_]+)\.sql$")

_CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationChanged(RuntimeError):
    """A migration already applied to this database differs from the file shipped now."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migrations shipped in the `deploy` package, in the order they apply."""
    found: list[Migration] = []
    for entry in (resources.files("deploy") / "migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match and entry.is_file():
            found.append(Migration(match.group(1), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.name)


async def apply_migrations(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
) -> list[str]:
    """Apply the migrations this database lacks; return the names applied, in order."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_SCHEMA_MIGRATIONS)
        recorded = {
            row["name"]: row["checksum"]
            for row in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        applied: list[str] = []
        for migration in available_migrations():
            if migration.name in recorded:
                if recorded[migration.name] != migration.checksum:
                    raise MigrationChanged(
                        f"migration {migration.name} was applied with checksum "
                        f"{recorded[migration.name]}, but the file now has "
                        f"{migration.checksum}; add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    migration.name,
                    migration.checksum,
                )
            applied.append(migration.name)
        return applied
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)


async def migrate(database_url: str) -> list[str]:
    """Connect to `database_url`, bring its schema up to date, return the names applied."""
    conn = await asyncpg.connect(database_url)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()
