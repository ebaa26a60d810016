"""Dates as people write them in chat: "1. marts 2027", "15-02-2027", "2027-03-01", "March 1, 2027".

Month names come from Babel's locale data (Danish and English, full and abbreviated), so the parser
knows exactly the names the replies print.
"""
from __future__ import annotations

import re
from collections.abc import Callable
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
_NUMERIC = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b")  # day first, as Danes write it: 15/3-2027
# Day and month without a year: "15/3", "d. 15/3", "d. 15.3". A slash alone, or a dot after "d."/"den", so that
# "kl. 10.30" and "1-3 opgaver" stay what they are.
_DAY_MONTH_SLASH = re.compile(r"(?<![-/.\d])\b(\d{1,2})/(\d{1,2})\b(?![-/.]\d)")
_DAY_MONTH_DOT = re.compile(r"\b(?:d|den)\.?\s*(\d{1,2})\.(\d{1,2})\b(?![-/.]\d)")
# A number after the month that is no year ("1. marts 99999") makes it no date: never a year guessed past it.
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?({_MONTH})\.?(?:\s+(\d{{4}}|\d{{2}})\b|(?!\s+\d{{3,}}))\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?(?:\s+(\d{{4}}|\d{{2}})\b|(?!\s+\d{{3,}}))\b")


class DateError(ValueError):
    """Looks like a date but is not one ("31-02-2027")."""


def _make(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise DateError(f"{day}-{month}-{year}") from None


def _next_occurrence(month: int, day: int, today: date) -> date:
    """"1. marts" is the next 1 March; "29. februar" the next leap day."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise DateError(f"{day}-{month}")
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise DateError(f"{day}-{month}")


def _year(text: str) -> int:
    return int(text) + (2000 if len(text) == 2 else 0)


# How a pattern's match becomes a date, given today (for a date without a year).
Reader = Callable[[re.Match[str], date], date]
# (pattern, how its match becomes a date), in the order they are tried at the same place in a text.
_READERS: tuple[tuple[re.Pattern[str], Reader], ...] = (
    (_ISO, lambda m, today: _make(int(m[1]), int(m[2]), int(m[3]))),
    (_NUMERIC, lambda m, today: _make(_year(m[3]), int(m[2]), int(m[1]))),
    (_DAY_MONTH_DOT, lambda m, today: _next_occurrence(int(m[2]), int(m[1]), today)),
    (_DAY_MONTH_SLASH, lambda m, today: _next_occurrence(int(m[2]), int(m[1]), today)),
    (_DAY_MONTH, lambda m, today: _make(_year(m[3]), _MONTHS[m[2]], int(m[1])) if m[3]
        else _next_occurrence(_MONTHS[m[2]], int(m[1]), today)),
    (_MONTH_DAY, lambda m, today: _make(_year(m[3]), _MONTHS[m[1]], int(m[2])) if m[3]
        else _next_occurrence(_MONTHS[m[1]], int(m[2]), today)),
)


def _first(folded: str) -> tuple[re.Match[str], Reader] | None:
    """The first date-like stretch of a folded text: (match, reader), or None."""
    best: tuple[re.Match[str], Reader] | None = None
    for pattern, reader in _READERS:
        m = pattern.search(folded)
        if m and (best is None or m.start() < best[0].start()):
            best = (m, reader)
    return best


def find_date(folded: str) -> tuple[int, int] | None:
    """Where the first date-like stretch of a folded text is (also one that is not a valid date)."""
    found = _first(folded)
    return found[0].span() if found else None


def parse_date(text: str, today: date) -> date | None:
    """The first date in `text`, or None. A date without a year is its next occurrence from `today`."""
    found = _first(fold(text))
    if found is None:
        return None
    match, reader = found
    return reader(match, today)
