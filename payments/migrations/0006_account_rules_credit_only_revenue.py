"""Account rules: only bounded accounts are locked and cache a balance; revenue is credit-only.

Every account gets the `rule` its kind implies (payments.models.ACCOUNT_RULES). Platform fee
revenue and inspection fees earned become credit-only: their cached balance is dropped (set to
0; the balance is the sum of their entries) and nothing locks their row any more, so postings
for different suppliers no longer queue on the one fee account of their currency.

PostgreSQL guards, replacing 0002's per-entry guard (which locked every account an entry
touched, the fee and clearing accounts included, and re-summed the account's whole history)
and its balance check (which re-summed it again on every cache update):

- On every entry, one row trigger: the entry's currency must be its account's; a credit-only
  account takes positive entries only (checked on the row itself, no lock); a bounded account's
  cached balance is moved by the entry (`UPDATE … SET balance = balance + amount`, O(1), under
  that row's lock) and refused if it would cross its bound (overdrawn, or debt above zero).
  Unbounded accounts (provider clearing) are not touched.
- The cached balance can only be changed by that trigger (a direct UPDATE is refused), and an
  account's key, kind, rule and currency never change.
- Unchanged from 0002: the deferred zero-sum check per transaction at commit, and entries and
  ledger transactions append-only.

Other databases (the SQLite newcomer profile) rely on payments.ledger and `ledger_check`.
"""

from django.db import migrations, models

DROP_0002_GUARDS = r"""
DROP TRIGGER IF EXISTS payments_entry_guard ON payments_entry;
DROP FUNCTION IF EXISTS payments_entry_guard();
DROP TRIGGER IF EXISTS payments_account_balance_matches ON payments_account;
DROP FUNCTION IF EXISTS payments_account_balance_matches();
"""

# 0002's guards, put back when this migration is reversed.
OLD_GUARDS = r"""
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
"""

FORWARD = r"""
CREATE OR REPLACE FUNCTION payments_entry_apply() RETURNS trigger AS $$
DECLARE
    acct RECORD;
BEGIN
    -- No lock here: the row's key, rule and currency never change (payments_account_guard).
    SELECT rule, currency, key INTO acct FROM payments_account WHERE id = NEW.account_id;
    IF acct.currency <> NEW.currency THEN
        RAISE EXCEPTION 'entry currency % differs from account % currency %',
            NEW.currency, acct.key, acct.currency USING ERRCODE = 'check_violation';
    END IF;
    IF acct.rule = 'credit_only' THEN
        IF NEW.amount <= 0 THEN
            RAISE EXCEPTION 'account % is credit-only; entry of % refused', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF acct.rule = 'non_negative' THEN
        UPDATE payments_account SET balance = balance + NEW.amount
         WHERE id = NEW.account_id AND balance + NEW.amount >= 0;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % would be overdrawn (entry %)', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF acct.rule = 'non_positive' THEN
        UPDATE payments_account SET balance = balance + NEW.amount
         WHERE id = NEW.account_id AND balance + NEW.amount <= 0;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % would go above zero (entry %)', acct.key, NEW.amount
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_entry_apply
    AFTER INSERT ON payments_entry
    FOR EACH ROW EXECUTE FUNCTION payments_entry_apply();

CREATE OR REPLACE FUNCTION payments_account_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.key <> OLD.key OR NEW.kind <> OLD.kind OR NEW.rule <> OLD.rule
       OR NEW.currency <> OLD.currency THEN
        RAISE EXCEPTION 'account % cannot change its key, kind, rule or currency', OLD.key
            USING ERRCODE = 'check_violation';
    END IF;
    -- Depth 1 is a statement from outside; the entry trigger's own UPDATE runs at depth 2.
    IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'account % balance % does not equal its entries: only entries move it',
            NEW.key, NEW.balance USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_account_guard
    BEFORE UPDATE ON payments_account
    FOR EACH ROW EXECUTE FUNCTION payments_account_guard();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS payments_account_guard ON payments_account;
DROP FUNCTION IF EXISTS payments_account_guard();
DROP TRIGGER IF EXISTS payments_entry_apply ON payments_entry;
DROP FUNCTION IF EXISTS payments_entry_apply();
"""

RULES = {
    "escrow": "non_negative",
    "inspection_fee_held": "non_negative",
    "refunds_in_transit": "non_negative",
    "supplier_payable": "non_negative",
    "payouts_in_transit": "non_negative",
    "unapplied_funds": "non_negative",
    "held_for_review": "non_negative",
    "supplier_debt": "non_positive",
    "platform_fees": "credit_only",
    "inspection_fees_earned": "credit_only",
    "provider_clearing": "unbounded",
}


def drop_old_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_0002_GUARDS, params=None)


def restore_old_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_GUARDS, params=None)


def set_rules(apps, schema_editor):
    Account = apps.get_model("payments", "Account")
    Entry = apps.get_model("payments", "Entry")
    for kind, rule in RULES.items():
        Account.objects.filter(kind=kind).update(rule=rule)
    # Credit-only and unbounded accounts cache nothing: their balance is the sum of the entries.
    Account.objects.filter(rule__in=["credit_only", "unbounded"]).update(balance=0)
    debited = Entry.objects.filter(account__rule="credit_only", amount__lte=0)
    if debited.exists():
        raise RuntimeError(
            "A platform revenue account has a debit entry; it cannot become credit-only."
        )


def restore_cached_balances(apps, schema_editor):
    from django.db.models import Sum

    Account = apps.get_model("payments", "Account")
    Entry = apps.get_model("payments", "Entry")
    for account in Account.objects.filter(rule="credit_only"):
        total = Entry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"]
        Account.objects.filter(pk=account.pk).update(balance=total or 0)


def create_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def drop_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("payments", "0005_contradicting_provider_events")]

    operations = [
        migrations.RunPython(drop_old_guards, restore_old_guards, elidable=False),
        migrations.RemoveConstraint(model_name="account", name="payments_account_balance_sign"),
        migrations.AddField(
            model_name="account",
            name="rule",
            field=models.CharField(
                choices=[
                    ("non_negative", "Never below zero"),
                    ("non_positive", "Never above zero"),
                    ("credit_only", "Only credited (balance summed from entries)"),
                    ("unbounded", "No sign rule (balance summed from entries)"),
                ],
                default="",
                max_length=12,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(set_rules, restore_cached_balances, elidable=False),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.CheckConstraint(
                condition=models.Q(("balance", 0), ("rule__in", ["credit_only", "unbounded"]))
                | models.Q(("balance__lte", 0), ("rule", "non_positive"))
                | models.Q(("balance__gte", 0), ("rule", "non_negative")),
                name="payments_account_balance_sign",
            ),
        ),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("kind__in", ["inspection_fees_earned", "platform_fees"]),
                    ("rule", "credit_only"),
                )
                | models.Q(
                    (
                        "kind__in",
                        [
                            "escrow",
                            "held_for_review",
                            "inspection_fee_held",
                            "payouts_in_transit",
                            "refunds_in_transit",
                            "supplier_payable",
                            "unapplied_funds",
                        ],
                    ),
                    ("rule", "non_negative"),
                )
                | models.Q(("kind__in", ["supplier_debt"]), ("rule", "non_positive"))
                | models.Q(("kind__in", ["provider_clearing"]), ("rule", "unbounded")),
                name="payments_account_rule_of_kind",
            ),
        ),
        migrations.RunPython(create_guards, drop_guards, elidable=False),
    ]
