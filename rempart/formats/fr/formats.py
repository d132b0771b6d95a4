"""French dates that cannot be read two ways: "1 déc. 2026", "1 décembre 2026", never "01/12/2026".

Django's own French formats (d/m/Y) read as 12 January to an English reader of a mixed page or document;
a month in letters is unambiguous in both languages. SHORT_DATETIME_FORMAT carries the seconds (the
surveillance and the ledger need them); DATETIME_FORMAT stops at the minute. Input formats are Django's.
"""

DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j N Y"
DATETIME_FORMAT = "j N Y, H:i"
SHORT_DATETIME_FORMAT = "j N Y, H:i:s"
MONTH_DAY_FORMAT = "j N"
YEAR_MONTH_FORMAT = "F Y"
TIME_FORMAT = "H:i"
