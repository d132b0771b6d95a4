"""Last line of defence: mask NIR- and IBAN-shaped strings in anything logged.

Code never logs these values on purpose; this filter catches the accident.
"""

from __future__ import annotations

import logging
import re

_NIR = re.compile(
    r"(?<![0-9A-Za-z])[1-478]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AaBb])\s?\d{3}\s?\d{3}(?:\s?\d{2})?(?![0-9A-Za-z])"
)
_IBAN = re.compile(
    r"(?<![0-9A-Za-z])[A-Z]{2}\d{2}(?:\s?[0-9A-Z]{4}){3,7}(?:\s?[0-9A-Z]{1,4})?(?![0-9A-Za-z])"
)


def redact(text: str) -> str:
    return _IBAN.sub("[IBAN]", _NIR.sub("[NIR]", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call ("%s %s" with one argument): keep it, masked, and do not raise
            message = f"{record.msg} (log arguments that do not match the message: {record.args!r})"
            record.msg, record.args = message, None
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True


def install() -> None:
    """Redact every log record when it is created, so no handler (console, mail, file) sees a NIR or IBAN."""
    current = logging.getLogRecordFactory()
    if getattr(current, "rempart_redacting", False):
        return
    redacting = RedactingFilter()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redacting.filter(record)
        return record

    factory.rempart_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
