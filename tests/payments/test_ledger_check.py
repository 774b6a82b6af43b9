import ast
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from payments import selectors, services
from payments.models import Account
from payments.tasks import ledger_check
from tests.payments.factories import EscrowFactory, pay_by_card
from tradeassure.platform.models import SystemAlert

pytestmark = pytest.mark.django_db


def test_ledger_check_passes_and_prints_a_summary(run_after_commit, capsys):
    escrow = EscrowFactory()
    run_after_commit(pay_by_card, escrow, Decimal("100.00"))
    call_command("ledger_check")
    out = capsys.readouterr().out
    assert "OK: every invariant holds." in out
    assert '"held_in_escrow": {"USD": "100.00"}' in out
    assert not SystemAlert.objects.exists()


def test_ledger_check_fails_on_a_cached_balance_that_lies(run_after_commit, capsys):
    # given a platform account whose cached balance disagrees with its (absent) entries
    Account.objects.create(
        key="unapplied_funds:EUR", kind="unapplied_funds", currency="EUR", balance=5
    )
    # when the check runs, then it exits non-zero, names the violation and alerts staff
    with pytest.raises(CommandError):
        call_command("ledger_check")
    assert "unapplied_funds:EUR" in capsys.readouterr().err
    alert = SystemAlert.objects.get(source="ledger_check")
    assert "unapplied_funds:EUR" in alert.message


def test_nightly_task_alerts_on_failure_and_is_scheduled():
    assert ledger_check.delay().get() is True
    assert not SystemAlert.objects.exists()
    Account.objects.create(
        key="unapplied_funds:GBP", kind="unapplied_funds", currency="GBP", balance=1
    )
    assert ledger_check.delay().get() is False
    assert SystemAlert.objects.filter(source="ledger_check").count() == 1
    schedules = {task.task: task for task in apps.get_app_config("payments").periodic_tasks}
    assert schedules["payments.ledger_check"].crontab == "30 2 * * *"


def test_ledger_verify_reports_a_captured_payment_without_capture(run_after_commit):
    escrow = EscrowFactory()
    payment = run_after_commit(pay_by_card, escrow, Decimal("10.00"), card="4000000000000002")
    type(payment).objects.filter(pk=payment.pk).update(status="captured")  # corrupt on purpose
    report = selectors.ledger_verify()
    assert not report.ok
    assert any("no capture in the ledger" in violation for violation in report.violations)


def test_resend_sweep_resends_stuck_refunds(run_after_commit, django_capture_on_commit_callbacks):
    import time_machine

    from payments.models import Refund

    escrow = EscrowFactory()
    run_after_commit(pay_by_card, escrow, Decimal("10.00"))
    with django_capture_on_commit_callbacks(execute=False):  # the broker "lost" the request
        services.escrow_refund(
            escrow_reference=escrow.reference,
            amount=Decimal("10.00"),
            idempotency_key="r",
            reason="",
        )
    assert Refund.objects.get().status == Refund.Status.REQUESTED
    with time_machine.travel(Refund.objects.get().created_at.timestamp() + 600, tick=False):
        assert services.provider_requests_resend_stuck() == 1
    assert Refund.objects.get().status == Refund.Status.COMPLETED
    assert selectors.ledger_verify().ok


def test_payments_never_imports_orders_disputes_or_suppliers():
    root = Path(__file__).resolve().parents[2] / "payments"
    forbidden = ("orders", "disputes", "suppliers")
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offenders == []
