"""English dates that cannot be read two ways: "1 Dec 2026", "1 December 2026", never "12/01/2026".

Day first as in the French pages, the month in letters, a 24-hour clock: a date reads the same in both
languages of the platform. SHORT_DATETIME_FORMAT carries the seconds; DATETIME_FORMAT stops at the minute.
"""

DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i:s"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "F Y"
TIME_FORMAT = "H:i"
