# ruff: noqa: S608 - the SQL is built from identifiers checked in StatementForeignKey.__post_init__, never values
"""Foreign keys checked once per statement instead of once per row (PostgreSQL).

PostgreSQL checks a foreign key with one lookup and one row lock of the parent per inserted row (queued, and for
Django's deferred constraints run at commit). A national rights import inserts millions of beneficiaries and
hundreds of thousands of contracts in one transaction: those per-row checks were a fifth of its time. The guards
made here keep the same guarantee — the database refuses a child row whose parent does not exist, and a parent
deletion that would leave children — with one set-based check per statement, over the statement's transition
table.

Concurrency. The per-row check locks each parent row (``FOR KEY SHARE``) so that a concurrent deletion waits.
Locking every parent a statement references costs as much as the checks it replaces (a WAL record per locked
row), so under READ COMMITTED the guards serialise on a transaction-scoped advisory lock instead: every statement
that adds children takes it shared, every deletion of parents takes it exclusive, each *before* its check, whose
query then takes a fresh snapshot. Whichever of the two transactions comes second waits for the first to commit
and then sees its rows: an insert sees the parent gone and fails, a deletion sees the new children and fails.
Parent deletions are rare (the application never deletes a contract; erasure and the admin do, one at a time),
so the exclusive lock holds nobody up in practice; concurrent imports share the lock. Under REPEATABLE READ or
SERIALIZABLE a fresh snapshot is not available, so the check locks the parents ``FOR KEY SHARE`` as PostgreSQL's
own check does (a concurrent deletion then fails the transaction with a serialisation error).

SQLite keeps its ordinary foreign key (its per-row cost is no different from a trigger's): the migration that
installs these guards leaves it untouched, and ``rempart.registry.tests.test_integrity_guards`` checks that both
databases still refuse orphans, so that a later migration rebuilding a table cannot drop a guard silently.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, fields

# First key of the advisory locks taken by these guards ("rempart statement fk"); the second names the parent.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_LOCK_CLASS = zlib.crc32(b"rempart statement fk") & 0x7FFFFFFF


@dataclass(frozen=True)
class StatementForeignKey:
    """``child.column`` references ``parent.id``; ``name`` prefixes the functions and triggers made for it."""

    name: str
    child: str
    column: str
    parent: str

    def __post_init__(self) -> None:
        for field in fields(self):
            if not _IDENTIFIER.fullmatch(getattr(self, field.name)):
                raise ValueError(f"not a plain SQL identifier: {field.name}")

    @property
    def lock_key(self) -> int:
        return zlib.crc32(self.parent.encode()) & 0x7FFFFFFF

    def create_sql(self) -> list[str]:
        """The PostgreSQL statements that install the guards (run after the plain constraint is dropped)."""
        lock = f"{_LOCK_CLASS}, {self.lock_key}"
        refuse_child = (
            f'RAISE foreign_key_violation USING MESSAGE = \'insert or update on table "{self.child}" violates '
            f"foreign key \"{self.name}\"', TABLE = '{self.child}', CONSTRAINT = '{self.name}';"
        )
        refuse_parent = (
            f'RAISE foreign_key_violation USING MESSAGE = \'update or delete on table "{self.parent}" violates '
            f"foreign key \"{self.name}\"', TABLE = '{self.parent}', CONSTRAINT = '{self.name}';"
        )
        orphans = (
            f"SELECT 1 FROM (SELECT DISTINCT n.{self.column} AS id FROM new_rows n"
            f" WHERE n.{self.column} IS NOT NULL) n"
            f" WHERE NOT EXISTS (SELECT 1 FROM {self.parent} p WHERE p.id = n.id)"
        )
        return [
            f"""CREATE FUNCTION {self.name}_child_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  low bigint;
  high bigint;
  referencing bigint;
BEGIN
  IF current_setting('transaction_isolation') = 'read committed' THEN
    PERFORM pg_advisory_xact_lock_shared({lock});
  ELSE
    PERFORM 1 FROM {self.parent} p
      WHERE p.id IN (SELECT n.{self.column} FROM new_rows n) FOR KEY SHARE OF p;
  END IF;
  SELECT min(n.{self.column}), max(n.{self.column}), count(n.{self.column}) INTO low, high, referencing
    FROM new_rows n;
  IF low IS NULL THEN
    RETURN NULL;
  END IF;
  -- A bulk load references a dense run of parents: if every id from the lowest referenced to the highest
  -- exists, so does every referenced one, which one count over the parent's primary key proves (ids come from
  -- a sequence, gaps are rare). Otherwise, or for a few rows spread wide (a delta), one probe per distinct id.
  IF (high - low + 1 > 4 * referencing
      OR (SELECT count(*) FROM {self.parent} p WHERE p.id BETWEEN low AND high) <> high - low + 1)
     AND EXISTS ({orphans}) THEN
    {refuse_child}
  END IF;
  RETURN NULL;
END $$""",
            f"""CREATE TRIGGER {self.name}_insert AFTER INSERT ON {self.child}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {self.name}_child_check()""",
            f"""CREATE TRIGGER {self.name}_update AFTER UPDATE ON {self.child}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {self.name}_child_check()""",
            f"""CREATE FUNCTION {self.name}_parent_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({lock});
  IF EXISTS (SELECT 1 FROM old_rows o WHERE EXISTS (
        SELECT 1 FROM {self.child} c WHERE c.{self.column} = o.id)) THEN
    {refuse_parent}
  END IF;
  RETURN NULL;
END $$""",
            f"""CREATE TRIGGER {self.name}_delete AFTER DELETE ON {self.parent}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {self.name}_parent_check()""",
            f"""CREATE FUNCTION {self.name}_parent_rekey() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {refuse_parent}
END $$""",
            f"""CREATE TRIGGER {self.name}_rekey BEFORE UPDATE OF id ON {self.parent}
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION {self.name}_parent_rekey()""",
            # TRUNCATE fires no DELETE trigger; after it, any child row left is an orphan (Django's test flush
            # truncates every table in one statement, so the children are gone by then).
            f"""CREATE FUNCTION {self.name}_parent_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {self.child}) THEN
    {refuse_parent}
  END IF;
  RETURN NULL;
END $$""",
            f"""CREATE TRIGGER {self.name}_truncate AFTER TRUNCATE ON {self.parent}
  FOR EACH STATEMENT EXECUTE FUNCTION {self.name}_parent_truncated()""",
        ]

    def drop_sql(self) -> list[str]:
        return [
            f"DROP TRIGGER IF EXISTS {self.name}_insert ON {self.child}",
            f"DROP TRIGGER IF EXISTS {self.name}_update ON {self.child}",
            f"DROP TRIGGER IF EXISTS {self.name}_delete ON {self.parent}",
            f"DROP TRIGGER IF EXISTS {self.name}_rekey ON {self.parent}",
            f"DROP TRIGGER IF EXISTS {self.name}_truncate ON {self.parent}",
            f"DROP FUNCTION IF EXISTS {self.name}_child_check()",
            f"DROP FUNCTION IF EXISTS {self.name}_parent_check()",
            f"DROP FUNCTION IF EXISTS {self.name}_parent_rekey()",
            f"DROP FUNCTION IF EXISTS {self.name}_parent_truncated()",
        ]

    def installed_sql(self) -> str:
        """A query counting this guard's triggers (5 when installed)."""
        return (
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname IN "
            f"('{self.name}_insert', '{self.name}_update', '{self.name}_delete', '{self.name}_rekey',"
            f" '{self.name}_truncate')"
        )


def foreign_key_constraints(cursor, child: str, column: str) -> list[str]:
    """Names of PostgreSQL's own foreign-key constraints on ``child.column``."""
    cursor.execute(
        """SELECT c.conname FROM pg_constraint c
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
           WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND a.attname = %s""",
        [child, column],
    )
    return [name for (name,) in cursor.fetchall()]
