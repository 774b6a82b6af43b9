"""No hot payable: entries that move a shared account away from its bound take no lock.

0006 made every entry on a bounded account update that account's cached balance in place, so all
the releases of one busy supplier queued on its payable's row from the posting to the commit.
A credit to a never-below-zero account (or a debit to a never-above-zero one, a new debt) cannot
break its rule, so only the entries towards the bound need the lock and the check:

- An entry that moves a *shared* bounded account (one that is not an escrow's own: a supplier's
  payable or debt, unapplied funds, held for review, payouts in transit) away from its bound is
  appended to `payments_unfoldedentry` by the entry trigger; the account's row is not touched
  (only a key-share lock for the foreign key, which `FOR NO KEY UPDATE` does not block).
- An entry towards the bound on such an account locks the account's row, then (in a new
  statement, so it sees every such entry committed before the lock) deletes the account's
  unfolded entries and adds their sum and the new entry to the cache in one O(1) UPDATE,
  refused past the bound. The bound is checked against the whole balance, and the cache never
  crosses it, so `cache + unfolded` (the balance) cannot either: unfolded entries only move
  away from it. Two debits still serialise on the row lock; credits never wait.
- An escrow's own accounts move only under the escrow's row lock: they cache every entry in
  place as before.
- Only the entry trigger writes `payments_unfoldedentry` (a direct INSERT, UPDATE or DELETE is
  refused), so an unfolded row is always exactly one entry of its account; `ledger_check`
  verifies that and `cache + unfolded = SUM(entries)` (a TRUNCATE, which row triggers cannot
  see, is what the test database's flush does and what a restore may do).

Other databases (the SQLite newcomer profile) keep every entry in the cache (payments.ledger).
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION payments_entry_apply() RETURNS trigger AS $$
DECLARE
    acct RECORD;
    away boolean;
    folded numeric := 0;
BEGIN
    -- No lock here: the row's key, rule, currency and escrow never change.
    SELECT rule, currency, key, escrow_id INTO acct FROM payments_account WHERE id = NEW.account_id;
    IF acct.currency <> NEW.currency THEN
        RAISE EXCEPTION 'entry currency % differs from account % currency %',
            NEW.currency, acct.key, acct.currency USING ERRCODE = 'check_violation';
    END IF;
    IF acct.rule = 'credit_only' THEN
        IF NEW.amount <= 0 THEN
            RAISE EXCEPTION 'account % is credit-only; entry of % refused', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    ELSIF acct.rule NOT IN ('non_negative', 'non_positive') THEN
        RETURN NULL;
    END IF;
    away := (acct.rule = 'non_negative' AND NEW.amount > 0)
         OR (acct.rule = 'non_positive' AND NEW.amount < 0);
    IF acct.escrow_id IS NULL THEN
        IF away THEN
            -- Cannot cross the bound: appended, no lock on the account's row.
            INSERT INTO payments_unfoldedentry (entry_id, account_id, amount)
                 VALUES (NEW.id, NEW.account_id, NEW.amount);
            RETURN NULL;
        END IF;
        -- Towards the bound: lock first, then fold what was appended until now (this new
        -- statement sees every unfolded entry committed before the lock was granted).
        PERFORM 1 FROM payments_account WHERE id = NEW.account_id FOR NO KEY UPDATE;
        WITH gone AS (
            DELETE FROM payments_unfoldedentry WHERE account_id = NEW.account_id RETURNING amount
        )
        SELECT COALESCE(SUM(amount), 0) INTO folded FROM gone;
    END IF;
    IF acct.rule = 'non_negative' THEN
        UPDATE payments_account SET balance = balance + folded + NEW.amount
         WHERE id = NEW.account_id AND balance + folded + NEW.amount >= 0;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % would be overdrawn (entry %)', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        UPDATE payments_account SET balance = balance + folded + NEW.amount
         WHERE id = NEW.account_id AND balance + folded + NEW.amount <= 0;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % would go above zero (entry %)', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION payments_unfolded_entry_guard() RETURNS trigger AS $$
BEGIN
    -- Depth 1 is a statement from outside; the entry trigger's own statements run at depth 2.
    IF TG_OP = 'UPDATE' OR pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'payments_unfoldedentry is written by the entry trigger only'
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_unfolded_entry_guard
    BEFORE INSERT OR UPDATE OR DELETE ON payments_unfoldedentry
    FOR EACH ROW EXECUTE FUNCTION payments_unfolded_entry_guard();
"""

# 0006's function, and every unfolded entry folded back into its cache, when reversed.
BACKWARD = r"""
DROP TRIGGER IF EXISTS payments_unfolded_entry_guard ON payments_unfoldedentry;
DROP FUNCTION IF EXISTS payments_unfolded_entry_guard();
SET LOCAL session_replication_role = replica;
UPDATE payments_account a SET balance = a.balance + u.total
  FROM (SELECT account_id, SUM(amount) AS total FROM payments_unfoldedentry GROUP BY account_id) u
 WHERE a.id = u.account_id;
DELETE FROM payments_unfoldedentry;
SET LOCAL session_replication_role = origin;
"""


def _0006():
    import importlib

    return importlib.import_module("payments.migrations.0006_account_rules_credit_only_revenue")


def create_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def restore_0006(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(BACKWARD, params=None)
    # 0006's CREATE TRIGGER statements would collide with the triggers still in place; only
    # its entry function changed.
    function = _0006().FORWARD.split("CREATE TRIGGER payments_entry_apply", 1)[0]
    schema_editor.execute(function, params=None)


class Migration(migrations.Migration):
    dependencies = [("payments", "0007_preshipment_inspection_fee_purpose")]

    operations = [
        migrations.CreateModel(
            name="UnfoldedEntry",
            fields=[
                (
                    "entry",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="payments.entry",
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=14)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="payments.account",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("amount", 0), _negated=True),
                        name="payments_unfolded_entry_not_zero",
                    )
                ],
            },
        ),
        migrations.RunPython(create_guards, restore_0006, elidable=False),
    ]
