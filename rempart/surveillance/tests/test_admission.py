"""The token's surveillance state read with the token (rempart.surveillance.admission): used once, by the
thread that read it, while fresh; otherwise the check reads the database as before."""

import threading

import pytest

from rempart.accounts import tokens
from rempart.surveillance import admission
from rempart.surveillance.models import ActorState


@pytest.fixture
def raw(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def test_the_read_serves_once_and_only_its_own_token(db, cast, raw):
    token = tokens.authenticate_token(raw, "rights:check")
    assert admission.take(token.pk + 1) is None  # another token: not this read
    token = tokens.authenticate_token(raw, "rights:check")
    suspended_at, status, state = admission.take(token.pk)
    assert suspended_at is None and status == "active" and state is None  # no surveillance state yet
    assert admission.take(token.pk) is None  # used


def test_the_state_comes_with_its_types(db, cast, raw):
    import datetime as dt

    from django.utils import timezone

    token = tokens.authenticate_token(raw, "rights:check")
    admission.take(token.pk)
    until = timezone.now() + dt.timedelta(minutes=5)
    ActorState.objects.create(actor=f"t:{token.pk}", throttled_until=until, known_ips=["192.0.2.7"])
    tokens.authenticate_token(raw, "rights:check")
    _suspended, _status, state = admission.take(token.pk)
    assert state.throttled_until == until and state.known_ips == ["192.0.2.7"]


def test_a_stale_read_is_not_used(db, cast, raw, monkeypatch):
    token = tokens.authenticate_token(raw, "rights:check")
    monkeypatch.setattr(admission, "FRESH_SECONDS", -1.0)
    assert admission.take(token.pk) is None


def test_a_rejected_token_hands_nothing_over(db, cast, raw):
    with pytest.raises(tokens.TokenRejected):
        tokens.authenticate_token(raw, "pec:request")  # a scope it does not have
    token = tokens._token_by_prefix(raw.split("_")[1])
    assert admission.take(token.pk) is None


def test_another_thread_does_not_see_the_read(db, cast, raw):
    token = tokens.authenticate_token(raw, "rights:check")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(admission.take(token.pk)))
    thread.start()
    thread.join()
    assert seen == [None]
    assert admission.take(token.pk) is not None
