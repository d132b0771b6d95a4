"""rempart.lib.redact: NIR- and IBAN-shaped strings are masked in whatever is logged."""

from __future__ import annotations

import io
import logging

import pytest

from rempart.lib.redact import RedactingFilter, redact

NIR = "185077512345659"
NIR_CORSICA = "255082A01234575"
IBAN = "FR7630006000011234567890189"
IBAN_SPACED = "FR76 3000 6000 0112 3456 7890 189"
IBAN_DE = "DE89370400440532013000"


@pytest.mark.parametrize(
    "secret",
    [
        NIR,
        "1 85 07 75 123 456 59",
        NIR[:13],  # without its key
        NIR_CORSICA,
        NIR_CORSICA.lower(),
        IBAN,
        IBAN_SPACED,
        IBAN_DE,
    ],
)
def test_redact_masks_nir_and_iban_shapes(secret):
    for text in (secret, f"value={secret}", f"({secret})", f"'{secret}', next", f"{secret}\n{secret}"):
        cleaned = redact(text)
        assert secret not in cleaned
        assert "[NIR]" in cleaned or "[IBAN]" in cleaned


def test_redact_leaves_ordinary_text_alone():
    for text in ("import 42 rows in 1.5 s", "line 12, column nir: wrong check key", "contract 0000000012"):
        assert redact(text) == text


@pytest.fixture
def redacted_logger():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("rempart.tests.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_log_messages_and_arguments_are_masked(redacted_logger):
    logger, stream = redacted_logger
    logger.info("NIR %s and IBAN %s", NIR, IBAN_SPACED)
    logger.warning(f"inline {NIR_CORSICA} / {IBAN_DE}")
    logger.debug("dict %(nir)s", {"nir": NIR})
    output = stream.getvalue()
    for secret in (NIR, IBAN_SPACED, IBAN, NIR_CORSICA, IBAN_DE):
        assert secret not in output
    assert output.count("[NIR]") == 3
    assert output.count("[IBAN]") == 2


def test_exception_text_is_masked(redacted_logger):
    logger, stream = redacted_logger
    try:
        try:
            raise KeyError(IBAN)
        except KeyError as inner:
            raise ValueError(f"bad NIR {NIR}") from inner
    except ValueError:
        logger.exception("import failed")
    output = stream.getvalue()
    assert "Traceback" in output
    assert "ValueError: bad NIR [NIR]" in output
    assert NIR not in output
    assert IBAN not in output


def test_the_configured_console_handler_masks():
    """The logging configuration installs the filter on the handler that writes the logs."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, RedactingFilter) for f in h.filters)
    ]
    assert handlers, "no root log handler carries the RedactingFilter"
    stream = io.StringIO()
    handler = handlers[0]
    # Swapped by hand: setStream() would flush the previous stream, which an earlier test may have closed
    # (a command run in-process reconfigures logging on pytest's captured stderr).
    previous, handler.stream = handler.stream, stream
    try:
        logging.getLogger("rempart.tests.console").error("NIR %s", NIR)
    finally:
        handler.stream = previous
    assert "[NIR]" in stream.getvalue()
    assert NIR not in stream.getvalue()


def test_a_malformed_log_call_neither_raises_nor_leaks(redacted_logger):
    logger, stream = redacted_logger
    logger.warning("two values %s %s", NIR)  # one argument for two placeholders
    logger.warning("no placeholder", IBAN)
    output = stream.getvalue()
    assert NIR not in output and IBAN not in output
    assert output.count("[NIR]") == 1 and output.count("[IBAN]") == 1


def test_records_are_masked_when_created():
    """Whatever handler receives them (mail, file, a test's capture), records carry no NIR."""
    from rempart.lib.redact import install

    install()
    install()  # idempotent
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("rempart.tests.factory")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.error("NIR %s", NIR)
    finally:
        logger.removeHandler(handler)
    assert records and records[0].getMessage() == "NIR [NIR]"
