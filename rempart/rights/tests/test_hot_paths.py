"""The hot paths' fixed statements (rempart.lib.hot_sql): same answers, same types, same chain as the ORM."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections, transaction

from rempart.accounts import tokens
from rempart.ledger import chain
from rempart.ledger.models import Disclosure

from .test_channels import body, post


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def test_statements_are_observable_and_carry_no_clear_nir(client, cast, family, token):
    sent = []

    def collect(execute, sql, params, many, context):
        sent.append(f"{sql}\n{params!r}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(collect):
        answer = post(client, token, body(family)).json()
    assert answer["outcome"] == "covered"
    text = "\n".join(sent)
    assert "registry_beneficiary" in text and "ledger_disclosure" in text  # the wrapper saw the gate's SQL
    assert family.parent_nir not in text and family.parent_nir[:13] not in text


def test_token_is_read_with_its_types_and_standing(cast, token):
    found = tokens._token_by_prefix(token.split("_")[1])
    assert found.scopes == ["rights:check"]  # a list, not JSON text (a substring test would pass on text)
    assert isinstance(found.expires_at, dt.datetime) and found.expires_at.tzinfo is not None
    assert found.organisation_status == "active" and found.creator_active and not found.creator_suspended
    assert found.organisation.name == cast.optician.name  # loaded on demand
    assert tokens._token_by_prefix("00000000") is None


def test_a_token_whose_creator_was_deleted_still_works(cast, token):
    """created_by is SET_NULL: the left join must keep the token (its organisation owns it)."""
    found = tokens._token_by_prefix(token.split("_")[1])
    type(found).objects.filter(pk=found.pk).update(created_by=None)
    assert tokens.authenticate_token(token, "rights:check").pk == found.pk


def test_every_miss_costs_the_same_single_lookup(client, cast, family, token):
    """Unknown insurer, unknown adherent, wrong NIR, wrong birth date: one registry statement each (no timing oracle)."""
    misses = [
        body(family, amc_number="999999999"),
        body(family, adherent_number="ADH-9999"),
        body(family, nir=family.lunar_nir),
        body(family, birth_date="1985-05-13"),
    ]
    for payload in misses:
        lookups = []

        def collect(execute, sql, params, many, context, lookups=lookups):
            # The lookup (alone, or with a token's standing: tokens.authenticate_token); not the switches
            # refresh, nor the organisation's care domains (the same for every card).
            if "FROM registry_insurer" in sql:
                lookups.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(collect):
            assert post(client, token, payload).json()["outcome"] == "no_match"
        assert len(lookups) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_every_chain_whole():
    """Writers in parallel threads (own connections) interleave on the chains; every link still holds."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers on the whole database (IMMEDIATE): nothing interleaves")
    errors = []

    def writer(n: int) -> None:
        try:
            for i in range(n):
                with transaction.atomic():
                    chain.append(channel="api", purpose="rights_check", organisation_id=1, outcome="no_match",
                                 domain="OPTI", fields=[], presented_hash=bytes([i % 256]) * 16)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(60,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = chain.verify()
    assert report.ok, report.broken
    assert report.rows == Disclosure.objects.count() == 240


@pytest.mark.django_db(transaction=True)
def test_long_transactions_appending_at_once_never_deadlock_nor_block_a_short_one():
    """Two lots in flight (each a long transaction appending many rows) and rights checks meanwhile: each
    transaction holds one chain head, so the lots cannot deadlock and a check never waits for a lot's commit."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers on the whole database (IMMEDIATE): nothing interleaves")
    errors, waits = [], []
    both_appended = threading.Barrier(3)

    def row(i: int) -> dict:
        return {"channel": "api", "purpose": "claim", "organisation_id": 1, "outcome": "no_match",
                "domain": "PHAR", "fields": [], "presented_hash": bytes([i % 256]) * 16}  # fmt: skip

    def lot(n: int) -> None:
        try:
            with transaction.atomic():
                for i in range(40):  # one by one and in batches, as lots do, each lock held to the end
                    chain.append(**row(i)) if i % 2 else chain.append_many([row(i), row(i + 1)])
                    if i == 20:
                        both_appended.wait(timeout=10)  # both lots hold their heads: a check comes now
                        both_appended.wait(timeout=10)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def check() -> None:
        try:
            both_appended.wait(timeout=10)
            started = time.monotonic()
            with transaction.atomic():
                chain.append(**row(0))
            waits.append(time.monotonic() - started)
            both_appended.wait(timeout=10)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=lot, args=(n,)) for n in range(2)] + [threading.Thread(target=check)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert waits and waits[0] < 1.0  # it took a free chain: the lots' commits are still to come
    report = chain.verify()
    assert report.ok, report.broken
    assert report.rows == Disclosure.objects.count() == 2 * 60 + 1
    # Each lot's rows went to one chain.
    per_chain = Disclosure.objects.values_list("chain", flat=True)
    assert len(set(per_chain)) <= 3


@pytest.mark.parametrize("recent_seconds, expected", [(0.0, 3), (60.0, 2)])
def test_an_api_check_reads_the_token_and_its_surveillance_state_in_one_statement(
    client, cast, family, token, monkeypatch, recent_seconds, expected
):
    """PostgreSQL, once warm: three statements per API check — the token with its state, the lookup, and the
    row with the clientele memory in one durable statement (docs/benchmarks.md, "Rights check"); two when the
    token was accepted in the last second (its standing then read with the lookup: tokens.authenticate_token)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite appends the transactional way")
    monkeypatch.setattr(tokens, "RECENT_SECONDS", recent_seconds)
    for _warm in range(2):  # the connection learns a chain head, takes a block of row ids, the caches fill
        post(client, token, body(family))
    sent = []

    def collect(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(collect):
        assert post(client, token, body(family)).json()["outcome"] == "covered"
    # The tests count in the database (production counts in Redis, one script call): leave those statements out.
    counting = ("surveillance_seenmember", "surveillance_counter", "synchronous_commit", "SAVEPOINT")
    sent = [sql for sql in sent if not any(word in sql for word in counting)]
    assert len(sent) == expected, sent
    assert "accounts_apitoken" in sent[0] and "surveillance_actorstate" in sent[0]
    assert "registry_beneficiary" in sent[expected - 2]
    assert "ledger_disclosure" in sent[-1] and "surveillance_clientelemember" in sent[-1]


def test_a_token_suspended_after_its_check_read_is_refused_by_the_next_check(client, cast, family, token):
    """The state read with the token serves its own request only: the next request reads again."""
    from django.utils import timezone

    from rempart.accounts.models import ApiToken

    assert post(client, token, body(family)).status_code == 200
    ApiToken.objects.filter(prefix=token.split("_")[1]).update(suspended_at=timezone.now())
    answer = post(client, token, body(family))
    assert answer.status_code == 403 and "ledger" not in answer.json()


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_at_once_keep_every_chain_whole():
    """Threads (own connections) appending with the one-statement append, several on the same chains, and
    transactional writers among them: every link holds, no row is lost."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers on the whole database (IMMEDIATE): nothing interleaves")
    from rempart.ledger import fast_append

    errors = []
    values = {"channel": "api", "purpose": "rights_check", "organisation_id": 1, "outcome": "no_match",
              "domain": "OPTI", "fields": [], "presented_hash": b"\x02" * 16}  # fmt: skip

    def writer(n: int, transactional: bool) -> None:
        try:
            connection._rempart_chain = 0  # all start on chain 0: the compare-and-set has to sort them out
            for _i in range(n):
                if transactional:
                    with transaction.atomic():
                        chain.append(**values)
                else:
                    fast_append.append(**values)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(50, n == 3)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = chain.verify()
    assert report.ok, report.broken
    assert report.rows == Disclosure.objects.count() == 200
