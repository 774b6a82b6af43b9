"""PostgreSQL guards, so that not even raw SQL can unbalance the ledger or overdraw an account.

- A deferred constraint trigger: at commit, every ledger transaction's entries sum to zero per
  currency.
- On every entry: the account row is locked, the entry's currency must be the account's, and the
  account's balance (summed from its entries) must keep its sign (escrow, payable … never below
  zero; supplier debt never above zero).
- The cached balance on an account can only be set to the sum of its entries.
- Entries and ledger transactions are append-only (no UPDATE, no DELETE).

Other databases (the SQLite newcomer profile) rely on the service layer and `ledger_check`.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION payments_transaction_balanced() RETURNS trigger AS $$
DECLARE
    bad RECORD;
BEGIN
    SELECT currency, SUM(amount) AS total INTO bad
      FROM payments_entry WHERE transaction_id = NEW.transaction_id
     GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in % (sum %)',
            NEW.transaction_id, bad.currency, bad.total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER payments_entry_balanced
    AFTER INSERT ON payments_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payments_transaction_balanced();

CREATE OR REPLACE FUNCTION payments_entry_guard() RETURNS trigger AS $$
DECLARE
    acct RECORD;
    total numeric;
BEGIN
    SELECT kind, currency, key INTO acct FROM payments_account WHERE id = NEW.account_id FOR UPDATE;
    IF acct.currency <> NEW.currency THEN
        RAISE EXCEPTION 'entry currency % differs from account % currency %',
            NEW.currency, acct.key, acct.currency USING ERRCODE = 'check_violation';
    END IF;
    IF acct.kind <> 'provider_clearing' THEN
        SELECT COALESCE(SUM(amount), 0) INTO total FROM payments_entry WHERE account_id = NEW.account_id;
        IF acct.kind = 'supplier_debt' AND total > 0 THEN
            RAISE EXCEPTION 'account % would go above zero (%)', acct.key, total
                USING ERRCODE = 'check_violation';
        ELSIF acct.kind <> 'supplier_debt' AND total < 0 THEN
            RAISE EXCEPTION 'account % would be overdrawn (%)', acct.key, total
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_entry_guard
    AFTER INSERT ON payments_entry
    FOR EACH ROW EXECUTE FUNCTION payments_entry_guard();

CREATE OR REPLACE FUNCTION payments_account_balance_matches() RETURNS trigger AS $$
DECLARE
    total numeric;
BEGIN
    IF NEW.balance IS DISTINCT FROM OLD.balance THEN
        SELECT COALESCE(SUM(amount), 0) INTO total FROM payments_entry WHERE account_id = NEW.id;
        IF NEW.balance <> total THEN
            RAISE EXCEPTION 'account % balance % does not equal its entries (%)',
                NEW.key, NEW.balance, total USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_account_balance_matches
    BEFORE UPDATE ON payments_account
    FOR EACH ROW EXECUTE FUNCTION payments_account_balance_matches();

CREATE OR REPLACE FUNCTION payments_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_entry_append_only
    BEFORE UPDATE OR DELETE ON payments_entry
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();

CREATE TRIGGER payments_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON payments_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS payments_ledgertransaction_append_only ON payments_ledgertransaction;
DROP TRIGGER IF EXISTS payments_entry_append_only ON payments_entry;
DROP FUNCTION IF EXISTS payments_append_only();
DROP TRIGGER IF EXISTS payments_account_balance_matches ON payments_account;
DROP FUNCTION IF EXISTS payments_account_balance_matches();
DROP TRIGGER IF EXISTS payments_entry_guard ON payments_entry;
DROP FUNCTION IF EXISTS payments_entry_guard();
DROP TRIGGER IF EXISTS payments_entry_balanced ON payments_entry;
DROP FUNCTION IF EXISTS payments_transaction_balanced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
