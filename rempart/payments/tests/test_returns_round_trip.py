"""The round trip through the run service (prepare → approve → a pain.002 rejects one transfer → the payable is
back → held while the IBAN is failed → paid to the new IBAN once released), and a kill -9 mid-import."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rempart.payments.models import Payment
from rempart.payments.returns import import_bank_file
from rempart.payments.tests.bank_files import rejecting
from rempart.payments.tests.returns_support import (  # noqa: F401 - fixtures
    NEW_IBAN,
    OTHER_IBAN,
    RUN_REF,
    SHOP_IBAN,
    bank,
    books_are_sound,
    payable,
    set_iban,
    state,
    treasurer_fixture,
)

SHOP, PHARMACY = f"{RUN_REF}-OPT", f"{RUN_REF}-PHA"


def reload(payment: Payment) -> Payment:
    return Payment.objects.get(pk=payment.pk)


# --- the round trip through the run service --------------------------------------------------------------------


def test_round_trip_a_rejected_transfer_is_held_then_paid_to_the_new_iban(cast, treasurer):
    from rempart.payments import runs
    from rempart.payments.tests.returns_support import owe
    from rempart.registry import bank_hold
    from rempart.registry.bank_details import change_bank_details, mask_iban
    from rempart.registry.models import BankDetailsChange

    set_iban(cast.optician.professional, SHOP_IBAN, "BNPAFRPPXXX")
    set_iban(cast.other_shop.professional, OTHER_IBAN, "AGRIFRPPXXX")
    owe(cast.optician, 12345, cast.insurer.insurer, "rt-shop")
    owe(cast.other_shop, 6789, cast.insurer.insurer, "rt-pharmacy")
    today = timezone.localdate()

    first = runs.approve_run(runs.prepare_run(today, user=cast.admin), user=treasurer)
    shop = Payment.objects.get(run=first, organisation=cast.optician)
    assert shop.status == Payment.Status.SENT and (payable(cast.optician), payable(cast.other_shop)) == (0, 0)

    import_bank_file(rejecting(first, {shop.reference: "AC04"}), user=treasurer)
    assert payable(cast.optician) == -12345 and payable(cast.other_shop) == 0
    assert books_are_sound()

    # While the IBAN is failed, nothing is paid to it: the run has nothing it can send.
    with pytest.raises(runs.PaymentRunError) as caught:
        runs.prepare_run(today, user=cast.admin)
    assert caught.value.code == "nothing_to_pay"
    # The owner gives a new IBAN: during its hold, still nothing.
    change_bank_details(cast.optician.professional, NEW_IBAN, "CCBPFRPPXXX", by=cast.owner)
    with pytest.raises(runs.PaymentRunError):
        runs.prepare_run(today, user=cast.admin)

    # Days later: the failure came first, the hold has ended.
    now = timezone.now()
    type(cast.optician.professional).objects.filter(pk=cast.optician.professional_id).update(
        iban_failed_at=now - dt.timedelta(days=7)
    )
    BankDetailsChange.objects.update(
        requested_at=now - dt.timedelta(days=6), hold_until=now - dt.timedelta(days=1)
    )
    assert (
        bank_hold.account_at(
            type(cast.optician.professional).objects.get(pk=cast.optician.professional_id), now
        ).iban
        == NEW_IBAN
    )
    second = runs.prepare_run(today, user=cast.admin)
    again = Payment.objects.get(run=second, organisation=cast.optician)
    assert (again.status, again.amount_cents) == (Payment.Status.PREPARED, 12345)
    [item] = again.items.all()
    assert (item.kind, item.transaction_id) == ("return", reload(shop).return_transaction_id)
    second = runs.approve_run(second, user=treasurer)
    again = reload(again)
    assert again.status == Payment.Status.SENT and again.iban_masked == mask_iban(NEW_IBAN)
    assert NEW_IBAN.encode() in bytes(second.file_content) and SHOP_IBAN.encode() not in bytes(
        second.file_content
    )
    assert payable(cast.optician) == 0 and bank() == -(12345 + 6789)
    assert books_are_sound()


@pytest.mark.django_db(transaction=True)
def test_kill_9_in_the_middle_of_an_import_leaves_nothing_half_applied(cast, tmp_path):
    """A child process imports a two-transfer rejection and is killed after the first one is applied."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from rempart.payments.tests.returns_support import approved_run, forget_payments
    from rempart.registry.tests.test_crash_safety import child_env

    set_iban(cast.optician.professional, SHOP_IBAN, "BNPAFRPPXXX")
    set_iban(cast.other_shop.professional, OTHER_IBAN, "AGRIFRPPXXX")
    shop, other = approved_run(
        RUN_REF, [(cast.optician, SHOP_IBAN, 12345, SHOP), (cast.other_shop, OTHER_IBAN, 6789, PHARMACY)],
        insurer=cast.insurer.insurer,
    )  # fmt: skip
    path = tmp_path / "sts.xml"
    path.write_bytes(rejecting(shop.run, {SHOP: "AC04", PHARMACY: "AC04"}))
    marker = tmp_path / "first-applied"
    script = (
        "import django, pathlib, time; django.setup()\n"
        "from rempart.payments import returns\n"
        "real = returns.mark_iban_failed\n"
        "def slow(*args, **kwargs):\n"
        "    done = real(*args, **kwargs)\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    time.sleep(120)\n"
        "    return done\n"
        "returns.mark_iban_failed = slow\n"
        f"returns.import_bank_file(pathlib.Path({str(path)!r}).read_bytes())\n"
    )
    before = state()
    child = subprocess.Popen([sys.executable, "-c", script], env=child_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child ended before applying anything"
            assert time.monotonic() < deadline, "the child never applied the first rejection"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    from django.db import connection

    if connection.vendor == "postgresql":  # the killed client's backend ends with its open statement
        from rempart.registry.tests.test_crash_safety import wait_for_backend_exit

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            for (pid,) in cursor.fetchall():
                wait_for_backend_exit(pid)
    try:
        assert state() == before
        assert (
            import_bank_file(path.read_bytes()).summary["rejected"] == 2
        )  # and the file can be imported again
        assert books_are_sound()
    finally:
        forget_payments()
