"""The soak test's load: the request mix and a fixed-rate, open-loop sender (bench/soak.py).

Open loop: request *i* is due at ``start + i / rate`` whatever happened to the earlier ones, so a slow or
failing server never slows the offered load down (a closed loop would hide an outage by waiting for it).
Latency is measured from the due time, not from the moment a thread got to send it: queueing on the client
side counts (no coordinated omission). At most ``inflight`` requests are out at once; a request due while
the cap is reached is not sent and is counted as ``client_overload`` (the table shows it, it is not an error
of the server).

Each answered request keeps its ledger reference (``reference`` in every 200 of the three endpoints); the
orchestrator looks each one up in the database after the run. Nothing of the person is recorded here:
the records hold the kind of request, the HTTP status, the outcome code and the reference.

Error kinds (``Record.error``, see ``error_kind``): ``refused`` (nothing listens: connection refused),
``reset`` (the server closed or reset the connection before answering), ``timeout`` (no answer within
REQUEST_TIMEOUT), ``http_<status>:<code>`` for a JSON error body with its stable code (``http_503:unavailable``),
``http_<status>:json`` for JSON without a code, ``http_<status>:html`` for any other body (an API must never
answer that), ``bad_answer`` (a 2xx without JSON or without a reference) and ``client_overload``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import http.client
import itertools
import json
import random
import threading
import time
from decimal import Decimal
from pathlib import Path

import claims as claims_bench  # noqa: E402 - sibling benchmark: invoice bodies (bench/ is on sys.path)
import pec as pec_bench  # noqa: E402 - sibling benchmark: PEC bodies

PATHS = {
    "rights": "/api/v1/rights/check",
    "pec": "/api/v1/pec",
    "claim": "/api/v1/claims",
}
DEFAULT_MIX = (("rights", 0.80), ("pec", 0.15), ("claim", 0.05))
REQUEST_TIMEOUT = 10.0  # seconds; past it the request is a "timeout" error
PEC_MISS_SHARE = 0.10  # PEC requests with a card that matches nobody


@dataclasses.dataclass(slots=True)
class Record:
    """One request as the client saw it (times in seconds from the start of the load)."""

    n: int
    kind: str  # rights | pec | claim
    expect: str  # hit | miss
    due: float
    sent: float = -1.0  # -1: never sent (client_overload)
    done: float = -1.0
    status: int = 0  # HTTP status; 0 when there was no HTTP answer
    error: str = ""  # "" for a 2xx; else one of the kinds of the module's docstring (error_kind)
    outcome: str = ""
    reference: str = ""

    @property
    def latency(self) -> float:
        return self.done - self.due if self.done >= 0 else -1.0

    @property
    def answered(self) -> bool:
        """A 2xx with a reference: the server says it answered, so a ledger row must exist."""
        return not self.error and bool(self.reference)


CSV_FIELDS = (
    "n",
    "kind",
    "expect",
    "due",
    "sent",
    "done",
    "latency",
    "status",
    "error",
    "outcome",
    "reference",
)


def write_records(path: Path, records: list[Record]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for r in records:
            writer.writerow([r.n, r.kind, r.expect, f"{r.due:.4f}", f"{r.sent:.4f}", f"{r.done:.4f}",
                             f"{r.latency:.4f}", r.status, r.error, r.outcome, r.reference])  # fmt: skip


# ---------------------------------------------------------------------------------------------- the mix


def _eur_cents(value) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


class Mix:
    """Bodies for the three endpoints, picked in a fixed pseudo-random order (seeded).

    Rights checks cycle through the rights benchmark's bodies (80 % hits, 20 % misses of four kinds). PECs are a
    class A pair of glasses for an adult hit, delivered today (so that it can be invoiced at once); one in ten
    carries a card that matches nobody. Claims invoice, when there is one, a PEC granted earlier in this run
    (its accepted lines, its number), otherwise a pharmacy invoice of one to three CIP13 lines; every invoice
    has a number of its own.
    """

    def __init__(
        self, bodies: list[str], expected: list[str], today: dt.date, shares=DEFAULT_MIX, seed: int = 1
    ) -> None:
        self.rng = random.Random(f"soak-{seed}")
        self.lock = threading.Lock()
        self.kinds = [k for k, _s in shares]
        self.weights = [s for _k, s in shares]
        self.rights = list(zip(bodies, expected, strict=True))
        self.rng.shuffle(self.rights)
        self._rights = itertools.cycle(self.rights)
        self.today = today
        adults = []
        for body, kind in self.rights:
            card = json.loads(body)
            if kind == "hit" and int(card["birth_date"][:4]) <= today.year - 21:
                adults.append({k: card[k] for k in ("amc_number", "adherent_number", "nir", "birth_date")}
                              | ({"birth_rank": card["birth_rank"]} if card.get("birth_rank") else {}))  # fmt: skip
        if not adults:
            raise ValueError("no adult among the hit bodies: the PEC and claim mix needs some")
        self.adults = adults
        self._adults = itertools.cycle(adults)
        self.misses = [json.loads(b) for b, k in self.rights if k != "hit"]
        self.granted: collections.deque = collections.deque(
            maxlen=5000
        )  # (card, PEC number, lines) to invoice
        self.invoice_serial = itertools.count(1)
        self.run_tag = f"S{int(time.time()) % 10**8:08d}"

    def next(self) -> tuple[str, str, dict | str, dict]:
        """(kind, expect, body, context) for the next request."""
        with self.lock:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            if kind == "rights":
                body, expect = next(self._rights)
                return kind, "hit" if expect == "hit" else "miss", body, {}
            if kind == "pec":
                if self.misses and self.rng.random() < PEC_MISS_SHARE:
                    card = dict(self.rng.choice(self.misses))
                    card = {k: card[k] for k in ("amc_number", "adherent_number", "nir", "birth_date")
                            if k in card} | ({"birth_rank": card["birth_rank"]} if card.get("birth_rank") else {})  # fmt: skip
                    return kind, "miss", self._pec_body(card), {"card": card}
                card = next(self._adults)
                return kind, "hit", self._pec_body(card), {"card": card}
            number = f"{self.run_tag}-{next(self.invoice_serial):07d}"
            if self.granted and self.rng.random() < 0.5:
                card, pec_number, lines = self.granted.popleft()
                invoice = claims_bench._invoice(
                    number, card, "OPTI", lines, self.today, pec_number=pec_number
                )
            else:
                card = next(self._adults)
                invoice = claims_bench._invoice(
                    number, card, "PHAR", claims_bench._pharmacy_lines(self.rng), self.today
                )
            return "claim", "hit", invoice, {}

    def _pec_body(self, card: dict) -> dict:
        # bench/pec.py's quote (a frame and two lenses, class A); delivered today so that it can be invoiced now.
        body = {**card, "domain": "OPTI", "delivery_date": self.today.isoformat()}
        body["prescription"] = {
            "date": (self.today - dt.timedelta(days=10)).isoformat(), "prescriber_id": "10001234567",
            "right": {"sphere": "-1.25"}, "left": {"sphere": "-1.00"},
        }  # fmt: skip
        body["lines"] = [dict(line) for line in PEC_LINES]
        return body

    def answered_pec(self, card: dict, answer: dict) -> None:
        """A granted PEC becomes a later invoice of the mix (its accepted lines, in cents)."""
        if answer.get("status") not in ("accepted", "partially_accepted") or not answer.get("number"):
            return
        lines = []
        for sent, line in zip(PEC_LINES, answer.get("lines", []), strict=False):
            if line.get("status") != "accepted":
                continue
            lines.append({"code_system": "LPP", "code": line["lpp_code"], "lpp_class": sent["class"],
                          "side": sent.get("side"), "quantity": 1, "unit_price_cents": _eur_cents(line["price_eur"]),
                          "base_cents": _eur_cents(line["base_eur"]), "amo_paid_cents": _eur_cents(line["amo_eur"]),
                          "amc_claimed_cents": _eur_cents(line["amc_eur"])})  # fmt: skip
        if lines:
            with self.lock:
                self.granted.append((card, answer["number"], lines))


PEC_LINES = (
    {"lpp_code": "2290100", "class": "A", "quantity": 1, "unit_price_eur": "30.00"},
    {"lpp_code": "2290200", "class": "A", "side": "right", "quantity": 1, "unit_price_eur": "32.50"},
    {"lpp_code": "2290200", "class": "A", "side": "left", "quantity": 1, "unit_price_eur": "32.50"},
)
assert pec_bench.TOKEN_SCOPES == ["pec:write"]  # the same quote as bench/pec.py's, on the same scope


# ---------------------------------------------------------------------------------------------- sending


def exception_kind(exc: BaseException) -> str:
    """What a request that got no HTTP answer met: refused, reset (closed before answering) or timeout."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return "reset"  # ConnectionResetError, BrokenPipeError, RemoteDisconnected, a truncated answer, …


def error_kind(status: int, raw: bytes) -> tuple[str, str]:
    """(kind, code) of a non-2xx answer: ``http_503:unavailable`` for a JSON body with its code, else
    ``http_<status>:json`` or ``http_<status>:html`` (anything that is not a JSON object)."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"http_{status}:html", ""
    code = str(body.get("code") or "")[:40]
    return f"http_{status}:{code or 'json'}", code


def _post(port: int, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}", "Connection": "close",
        })  # fmt: skip
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Load:
    """Sends ``rate`` requests per second for ``seconds``, open loop, at most ``inflight`` at once."""

    def __init__(self, port: int, token: str, mix: Mix, rate: float, seconds: float, inflight: int,
                 max_requests: int) -> None:  # fmt: skip
        self.port, self.token, self.mix = port, token, mix
        self.rate, self.seconds, self.inflight = rate, seconds, inflight
        self.total = min(max_requests, int(rate * seconds))
        self.records: list[Record] = []
        self.slots = threading.BoundedSemaphore(inflight)
        self.start = 0.0
        self.stopping = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.start

    def run(self) -> list[Record]:
        """Blocks until every request was due and every sent one came back (or timed out)."""
        self.start = time.monotonic()
        threads = []
        for n in range(self.total):
            due = n / self.rate
            delay = due - self.now()
            if delay > 0 and self.stopping.wait(delay):
                break
            kind, expect, body, context = self.mix.next()
            record = Record(n=n, kind=kind, expect=expect, due=due)
            self.records.append(record)
            if not self.slots.acquire(blocking=False):
                record.error = "client_overload"
                continue
            thread = threading.Thread(target=self._send, args=(record, body, context), daemon=True)
            thread.start()
            threads.append(thread)
            if len(threads) > 4 * self.inflight:
                threads = [t for t in threads if t.is_alive()]
        deadline = time.monotonic() + REQUEST_TIMEOUT + 5
        for thread in threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        return self.records

    def _send(self, record: Record, body, context: dict) -> None:
        try:
            data = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
            record.sent = self.now()
            try:
                status, raw = _post(self.port, PATHS[record.kind], data, self.token)
            except (http.client.HTTPException, OSError) as exc:  # socket.timeout is TimeoutError, an OSError
                record.error = exception_kind(exc)
                return
            finally:
                record.done = self.now()
            record.status = status
            if not 200 <= status < 300:
                record.error, record.outcome = error_kind(status, raw)
                return
            try:
                answer = json.loads(raw)
            except ValueError:
                record.error = "bad_answer"
                return
            record.reference = str(answer.get("reference") or "")
            record.outcome = str(answer.get("status") or answer.get("outcome") or "")[:40]
            if not record.reference:
                record.error = "bad_answer"
            elif record.kind == "pec":
                self.mix.answered_pec(context["card"], answer)
        finally:
            self.slots.release()
