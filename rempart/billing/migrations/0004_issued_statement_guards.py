# Hand-written: an issued statement cannot change, enforced by the database (docs/billing.md, "Statements").
#
# A statement is issued once its PDF's SHA-256 is set (``statements._finish`` sets everything in one save).
# From then on its identity (number, insurer, kind, what it corrects, period, due date), its amounts and its
# PDF never change and the row is never deleted; the detail file's path, digest and row count are written once
# (while the digest is still empty), the fee transaction is set once, the English PDF too. Its items can then be
# neither updated nor deleted. A statement not issued yet (being prepared) is free: ``_prepare_all`` deletes
# those with nothing to bill. Inserting items is not guarded (millions a month, set-wise, into statements being
# prepared; a row trigger would cost the preparation). TRUNCATE (PostgreSQL) is not guarded: the test runner
# empties tables with it. The status (issued, partly paid, paid, returned) follows the receipts and stays free.
# Values are compared (IS DISTINCT FROM / IS NOT), so a full ``save()`` that writes the same values passes.
from django.db import migrations

PG_GUARDS = r"""
CREATE FUNCTION billing_statement_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.pdf_sha256 <> '' THEN
      RAISE EXCEPTION 'billing: an issued statement cannot be deleted; issue a correction (%)', OLD.number
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.pdf_sha256 = '' THEN
    RETURN NEW;
  END IF;
  IF NEW.number IS DISTINCT FROM OLD.number OR NEW.insurer_id IS DISTINCT FROM OLD.insurer_id
     OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.corrects_id IS DISTINCT FROM OLD.corrects_id
     OR NEW.period_start IS DISTINCT FROM OLD.period_start OR NEW.period_end IS DISTINCT FROM OLD.period_end
     OR NEW.due_date IS DISTINCT FROM OLD.due_date OR NEW.paid_cents IS DISTINCT FROM OLD.paid_cents
     OR NEW.reversals_cents IS DISTINCT FROM OLD.reversals_cents OR NEW.fees_cents IS DISTINCT FROM OLD.fees_cents
     OR NEW.total_cents IS DISTINCT FROM OLD.total_cents OR NEW.pdf_content IS DISTINCT FROM OLD.pdf_content
     OR NEW.pdf_sha256 IS DISTINCT FROM OLD.pdf_sha256 THEN
    RAISE EXCEPTION 'billing: statement % is issued: its number, insurer, period, amounts and PDF cannot change',
      OLD.number USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (OLD.detail_sha256 <> '' AND (NEW.detail_sha256 IS DISTINCT FROM OLD.detail_sha256
        OR NEW.detail_path IS DISTINCT FROM OLD.detail_path OR NEW.detail_rows IS DISTINCT FROM OLD.detail_rows))
     OR (OLD.detail_path <> '' AND NEW.detail_path IS DISTINCT FROM OLD.detail_path)
     OR (OLD.fee_transaction_id IS NOT NULL AND NEW.fee_transaction_id IS DISTINCT FROM OLD.fee_transaction_id)
     OR (OLD.pdf_en_sha256 <> '' AND (NEW.pdf_en_sha256 IS DISTINCT FROM OLD.pdf_en_sha256
        OR NEW.pdf_en_content IS DISTINCT FROM OLD.pdf_en_content)) THEN
    RAISE EXCEPTION 'billing: the detail file, fee transaction and English PDF of issued statement % are written once',
      OLD.number USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER billing_statement_issued BEFORE UPDATE OR DELETE ON billing_statement
  FOR EACH ROW EXECUTE FUNCTION billing_statement_guard();

CREATE FUNCTION billing_statementitem_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM billing_statement s WHERE s.pdf_sha256 <> ''
              AND (s.id = OLD.statement_id OR (TG_OP = 'UPDATE' AND s.id = NEW.statement_id))) THEN
    RAISE EXCEPTION 'billing: the items of an issued statement cannot be updated or deleted'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER billing_statementitem_issued BEFORE UPDATE OR DELETE ON billing_statementitem
  FOR EACH ROW EXECUTE FUNCTION billing_statementitem_guard();
"""

PG_UNGUARDS = """
DROP TRIGGER IF EXISTS billing_statementitem_issued ON billing_statementitem;
DROP TRIGGER IF EXISTS billing_statement_issued ON billing_statement;
DROP FUNCTION IF EXISTS billing_statementitem_guard();
DROP FUNCTION IF EXISTS billing_statement_guard();
"""

# SQLite raises these as IntegrityError (RAISE(ABORT) is a constraint failure). One statement per trigger.
SQLITE_GUARDS = [
    """CREATE TRIGGER billing_statement_issued_update BEFORE UPDATE ON billing_statement
       WHEN OLD.pdf_sha256 <> '' AND (NEW.number IS NOT OLD.number OR NEW.insurer_id IS NOT OLD.insurer_id
         OR NEW.kind IS NOT OLD.kind OR NEW.corrects_id IS NOT OLD.corrects_id
         OR NEW.period_start IS NOT OLD.period_start OR NEW.period_end IS NOT OLD.period_end
         OR NEW.due_date IS NOT OLD.due_date OR NEW.paid_cents IS NOT OLD.paid_cents
         OR NEW.reversals_cents IS NOT OLD.reversals_cents OR NEW.fees_cents IS NOT OLD.fees_cents
         OR NEW.total_cents IS NOT OLD.total_cents OR NEW.pdf_content IS NOT OLD.pdf_content
         OR NEW.pdf_sha256 IS NOT OLD.pdf_sha256)
       BEGIN SELECT RAISE(ABORT, 'billing: statement is issued: its number, insurer, period, amounts and PDF cannot change'); END""",
    """CREATE TRIGGER billing_statement_issued_once BEFORE UPDATE ON billing_statement
       WHEN OLD.pdf_sha256 <> '' AND (
         (OLD.detail_sha256 <> '' AND (NEW.detail_sha256 IS NOT OLD.detail_sha256
           OR NEW.detail_path IS NOT OLD.detail_path OR NEW.detail_rows IS NOT OLD.detail_rows))
         OR (OLD.detail_path <> '' AND NEW.detail_path IS NOT OLD.detail_path)
         OR (OLD.fee_transaction_id IS NOT NULL AND NEW.fee_transaction_id IS NOT OLD.fee_transaction_id)
         OR (OLD.pdf_en_sha256 <> '' AND (NEW.pdf_en_sha256 IS NOT OLD.pdf_en_sha256
           OR NEW.pdf_en_content IS NOT OLD.pdf_en_content)))
       BEGIN SELECT RAISE(ABORT, 'billing: the detail file, fee transaction and English PDF of an issued statement are written once'); END""",
    """CREATE TRIGGER billing_statement_issued_delete BEFORE DELETE ON billing_statement
       WHEN OLD.pdf_sha256 <> ''
       BEGIN SELECT RAISE(ABORT, 'billing: an issued statement cannot be deleted; issue a correction'); END""",
    """CREATE TRIGGER billing_statementitem_issued_update BEFORE UPDATE ON billing_statementitem
       WHEN EXISTS (SELECT 1 FROM billing_statement s WHERE s.pdf_sha256 <> ''
                     AND s.id IN (OLD.statement_id, NEW.statement_id))
       BEGIN SELECT RAISE(ABORT, 'billing: the items of an issued statement cannot be updated or deleted'); END""",
    """CREATE TRIGGER billing_statementitem_issued_delete BEFORE DELETE ON billing_statementitem
       WHEN EXISTS (SELECT 1 FROM billing_statement s WHERE s.pdf_sha256 <> '' AND s.id = OLD.statement_id)
       BEGIN SELECT RAISE(ABORT, 'billing: the items of an issued statement cannot be updated or deleted'); END""",
]


def guard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_GUARDS, params=None)  # no placeholders: the % are PL/pgSQL's
    elif vendor == "sqlite":
        for statement in SQLITE_GUARDS:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"the billing guards are written for PostgreSQL and SQLite, not {vendor}")


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UNGUARDS, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_GUARDS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_money_returns_discard_scheme")]

    operations = [migrations.RunPython(guard, unguard, elidable=False)]
