"""People's names as one canonical text, so the same person written two ways is the same person.

Insurers' systems write names with typographic apostrophes (``D’Artagnan``), decomposed accents (NFD,
from macOS or some exports), non-breaking spaces and en dashes. Rejecting those rows would leave those
people with *no match* at the counter; storing them as given would make a re-import of the same person
look like a change. Every place that checks, stores or compares a name goes through ``normalise_name``
(docs/formats/rights-v1.md, section 3).
"""

from __future__ import annotations

import re
import unicodedata

# Apostrophes and look-alikes → the ASCII apostrophe.
APOSTROPHES = "\u2019\u02bc\u0060\u00b4\u2018\u2032\uff07"  # ’ ʼ ` ´ ‘ ′ ＇
# Hyphens and dashes → the ASCII hyphen-minus.
DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"  # ‐ ‑ ‒ – — ― − ﹣ －
# Spaces other than U+0020 (no-break, narrow no-break, the typographic widths, ideographic, tab …).
SPACES = "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"

_TABLE = str.maketrans(
    {**dict.fromkeys(APOSTROPHES, "'"), **dict.fromkeys(DASHES, "-"), **dict.fromkeys(SPACES, " ")}
)
_RUNS_OF_SPACES = re.compile(" {2,}")


def normalise_name(text: str) -> str:
    """NFC, one apostrophe, one hyphen, one kind of space, no doubled or surrounding spaces.

    Letters and case are kept as given (``Exemple`` and ``EXEMPLE`` stay different), and nothing is
    removed that could be part of a name: only how the same characters are encoded changes.
    """
    if text.isascii() and "\t" not in text and "`" not in text and "  " not in text:
        return text.strip(" ")  # the common case: nothing to do, and cheap at millions of rows
    text = unicodedata.normalize("NFC", text).translate(_TABLE)
    return _RUNS_OF_SPACES.sub(" ", text).strip(" ")
