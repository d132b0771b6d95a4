# Hand-written: the money ledger's invariant, enforced by the database (docs/accounting.md, "Guarantees").
#
# A transaction's row is written after its postings and seals them: inserting it checks that its postings are
# at least two, sum to zero and carry its effective date; a posting cannot join a sealed transaction; postings
# and transactions are never updated or deleted; an account's identity never changes. A posting whose
# transaction never comes is refused at commit by the deferred foreign key Django already creates on both.
# TRUNCATE (PostgreSQL) is not guarded: the test runner empties tables with it; it needs the table owner.
from django.db import migrations

PG_GUARDS = r"""
DROP INDEX accounting_posting_balance;  -- Django's state keeps the plain index: SQLite has no covering indexes
CREATE INDEX accounting_posting_balance ON accounting_posting (account_id, effective_date) INCLUDE (amount_cents);

CREATE FUNCTION accounting_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'accounting: % is append-only; post a reversing transaction instead', TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER accounting_posting_append_only BEFORE UPDATE OR DELETE ON accounting_posting
  FOR EACH ROW EXECUTE FUNCTION accounting_refuse_change();
CREATE TRIGGER accounting_transaction_append_only BEFORE UPDATE OR DELETE ON accounting_transaction
  FOR EACH ROW EXECUTE FUNCTION accounting_refuse_change();

CREATE FUNCTION accounting_posting_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM accounting_new_postings n JOIN accounting_transaction t ON t.id = n.transaction_id) THEN
    RAISE EXCEPTION 'accounting: a posting cannot be added to a sealed transaction'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER accounting_posting_open AFTER INSERT ON accounting_posting
  REFERENCING NEW TABLE AS accounting_new_postings
  FOR EACH STATEMENT EXECUTE FUNCTION accounting_posting_open();

CREATE FUNCTION accounting_transaction_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  broken bigint;
BEGIN
  SELECT s.id INTO broken
    FROM accounting_sealed s LEFT JOIN accounting_posting p ON p.transaction_id = s.id
   GROUP BY s.id, s.effective_date
  HAVING COUNT(p.id) < 2 OR COALESCE(SUM(p.amount_cents), 0) <> 0
      OR COALESCE(bool_or(p.effective_date <> s.effective_date), false)
   LIMIT 1;
  IF broken IS NOT NULL THEN
    RAISE EXCEPTION 'accounting: transaction % refused: its postings must be at least two, sum to zero and share its effective date', broken
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER accounting_transaction_seal AFTER INSERT ON accounting_transaction
  REFERENCING NEW TABLE AS accounting_sealed
  FOR EACH STATEMENT EXECUTE FUNCTION accounting_transaction_seal();

CREATE FUNCTION accounting_account_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'accounting: an account''s code, purpose, kind and owner cannot change'
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER accounting_account_identity BEFORE UPDATE ON accounting_account FOR EACH ROW
  WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.code IS DISTINCT FROM NEW.code
        OR OLD.purpose IS DISTINCT FROM NEW.purpose OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.insurer_id IS DISTINCT FROM NEW.insurer_id OR OLD.organisation_id IS DISTINCT FROM NEW.organisation_id)
  EXECUTE FUNCTION accounting_account_identity();
"""

PG_UNGUARDS = """
DROP INDEX IF EXISTS accounting_posting_balance;
CREATE INDEX accounting_posting_balance ON accounting_posting (account_id, effective_date);
DROP TRIGGER IF EXISTS accounting_account_identity ON accounting_account;
DROP TRIGGER IF EXISTS accounting_transaction_seal ON accounting_transaction;
DROP TRIGGER IF EXISTS accounting_posting_open ON accounting_posting;
DROP TRIGGER IF EXISTS accounting_transaction_append_only ON accounting_transaction;
DROP TRIGGER IF EXISTS accounting_posting_append_only ON accounting_posting;
DROP FUNCTION IF EXISTS accounting_account_identity();
DROP FUNCTION IF EXISTS accounting_transaction_seal();
DROP FUNCTION IF EXISTS accounting_posting_open();
DROP FUNCTION IF EXISTS accounting_refuse_change();
"""

# SQLite raises these as IntegrityError (RAISE(ABORT) is a constraint failure). One statement per trigger.
SQLITE_GUARDS = [
    """CREATE TRIGGER accounting_posting_integer BEFORE INSERT ON accounting_posting
       WHEN typeof(NEW.amount_cents) <> 'integer'
       BEGIN SELECT RAISE(ABORT, 'accounting: amounts are integer cents'); END""",
    """CREATE TRIGGER accounting_posting_open BEFORE INSERT ON accounting_posting
       WHEN EXISTS (SELECT 1 FROM accounting_transaction WHERE id = NEW.transaction_id)
       BEGIN SELECT RAISE(ABORT, 'accounting: a posting cannot be added to a sealed transaction'); END""",
    """CREATE TRIGGER accounting_posting_no_update BEFORE UPDATE ON accounting_posting
       BEGIN SELECT RAISE(ABORT, 'accounting: accounting_posting is append-only; post a reversing transaction instead'); END""",
    """CREATE TRIGGER accounting_posting_no_delete BEFORE DELETE ON accounting_posting
       BEGIN SELECT RAISE(ABORT, 'accounting: accounting_posting is append-only; post a reversing transaction instead'); END""",
    """CREATE TRIGGER accounting_transaction_seal BEFORE INSERT ON accounting_transaction
       WHEN (SELECT COUNT(*) FROM accounting_posting WHERE transaction_id = NEW.id) < 2
         OR (SELECT COALESCE(SUM(amount_cents), 0) FROM accounting_posting WHERE transaction_id = NEW.id) <> 0
         OR EXISTS (SELECT 1 FROM accounting_posting WHERE transaction_id = NEW.id AND effective_date <> NEW.effective_date)
       BEGIN SELECT RAISE(ABORT, 'accounting: transaction refused: its postings must be at least two, sum to zero and share its effective date'); END""",
    """CREATE TRIGGER accounting_transaction_no_update BEFORE UPDATE ON accounting_transaction
       BEGIN SELECT RAISE(ABORT, 'accounting: accounting_transaction is append-only; post a reversing transaction instead'); END""",
    """CREATE TRIGGER accounting_transaction_no_delete BEFORE DELETE ON accounting_transaction
       BEGIN SELECT RAISE(ABORT, 'accounting: accounting_transaction is append-only; post a reversing transaction instead'); END""",
    """CREATE TRIGGER accounting_account_identity BEFORE UPDATE ON accounting_account
       WHEN NEW.id IS NOT OLD.id OR NEW.code IS NOT OLD.code OR NEW.purpose IS NOT OLD.purpose
         OR NEW.kind IS NOT OLD.kind OR NEW.insurer_id IS NOT OLD.insurer_id
         OR NEW.organisation_id IS NOT OLD.organisation_id
       BEGIN SELECT RAISE(ABORT, 'accounting: an account''s code, purpose, kind and owner cannot change'); END""",
]

# What `rempart accounts check` expects to find (rempart/accounting/integrity.py reads these names).
PG_TRIGGERS = [
    "accounting_posting_append_only",
    "accounting_transaction_append_only",
    "accounting_posting_open",
    "accounting_transaction_seal",
    "accounting_account_identity",
]


def guard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_GUARDS, params=None)  # no placeholders: the % are PL/pgSQL's
    elif vendor == "sqlite":
        for statement in SQLITE_GUARDS:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(
            f"the money ledger's guards are written for PostgreSQL and SQLite, not {vendor}"
        )


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UNGUARDS, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_GUARDS:
            name = statement.split()[2]
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("accounting", "0001_initial")]

    operations = [migrations.RunPython(guard, unguard, elidable=False)]
