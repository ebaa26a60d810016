"""Dates as people write them in chat: "1. marts 2027", "15-02-2027", "2027-03-01", "March 1, 2027".

Month names come from Babel's locale data (Danish and English, full and abbreviated), so the parser
knows exactly the names the replies print.
"""
from __future__ import annotations

import re
from datetime import date

from babel.dates import get_month_names

from dialogs.text import fold


def _month_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for locale in ("da", "en"):
        for width in ("wide", "abbreviated"):
            for number, name in get_month_names(width, locale=locale).items():
                names[fold(name).rstrip(".")] = number
    names.update({"sept": 9, "maj": 5, "okt": 10})
    return names


_MONTHS = _month_names()
_MONTH = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b")  # day first, as Danes write it
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?({_MONTH})\.?(?:\s+(\d{{4}}|\d{{2}}))?\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?(?:\s+(\d{{4}}|\d{{2}}))?\b")


class DateError(ValueError):
    """Looks like a date but is not one ("31-02-2027")."""


def _make(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise DateError(f"{day}-{month}-{year}") from None


def _next_occurrence(month: int, day: int, today: date) -> date:
    """"1. marts" is the next 1 March; "29. februar" the next leap day."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise DateError(f"{day}-{month}")


def parse_date(text: str, today: date) -> date | None:
    """The first date in `text`, or None. A date without a year is its next occurrence from `today`."""
    folded = fold(text)
    if m := _ISO.search(folded):
        return _make(int(m[1]), int(m[2]), int(m[3]))
    if m := _NUMERIC.search(folded):
        year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
        return _make(year, int(m[2]), int(m[1]))
    for pattern, day_group, month_group in ((_DAY_MONTH, 1, 2), (_MONTH_DAY, 2, 1)):
        if m := pattern.search(folded):
            day, month = int(m[day_group]), _MONTHS[m[month_group]]
            if m[3]:
                return _make(int(m[3]) + (2000 if len(m[3]) == 2 else 0), month, day)
            return _next_occurrence(month, day, today)
    return None
