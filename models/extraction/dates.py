"""Dates and times in receipt text, day-first or month-first decided by the receipt's evidence."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from models.extraction.address import US_CITY_STATE, US_STATE_ZIP
from models.extraction.normalize import fix_digits, strip_accents

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "JAN JANUARY JANUARI JANUAR JANV JANVIER ENE ENERO GEN GENNAIO JANEIRO STY",
        "FEB FEBRUARY FEBRUARI FEBRUAR FEV FEVR FEVRIER FEBRERO FEBBRAIO FEVEREIRO LUT",
        "MAR MARCH MAC MAERZ MARZ MRZ MARS MARZO MRT MAART MARCO",
        "APR APRIL AVR AVRIL ABR ABRIL APRILE KWI",
        "MAY MEI MAI MAYO MAG MAGGIO MAIO",
        "JUN JUNE JUNI JUIN JUNIO GIU GIUGNO JUNHO CZE",
        "JUL JULY JULAI JULI JUIL JUILLET JULIO LUG LUGLIO JULHO LIP",
        "AUG AUGUST OGOS AOU AOUT AGO AGOSTO AUGUSTUS SIE",
        "SEP SEPT SEPTEMBER SEPTEMBRE SEPTIEMBRE SET SETTEMBRE SETEMBRO WRZ",
        "OCT OCTOBER OKT OKTOBER OCTOBRE OCTUBRE OTT OTTOBRE OUT OUTUBRO PAZ",
        "NOV NOVEMBER NOVEMBRE NOVIEMBRE NOVEMBRO LIS",
        "DEC DECEMBER DIS DISEMBER DEZ DEZEMBER DECEMBRE DIC DICIEMBRE DICEMBRE DEZEMBRO GRU",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
# A year glued to the time after it by a lost space ('5/3/201822:52:33') still ends the date.
_YEAR_THEN_TIME = r"(?:19|20)\d{2}(?=(?:[01]?\d|2[0-3]):[0-5]\d)"
_NUMERIC = re.compile(
    rf"(?<!\d)(\d{{1,4}})\s?([/\-.])\s?(\d{{1,2}})\s?\2\s?({_YEAR_THEN_TIME}|(?:\d{{4}}|\d{{2}})(?!\d))"
    rf"|(?<!\d)(\d{{1,2}})\s?([/\-.])\s?(\d{{1,2}})\s?[/\-.]\s?({_YEAR_THEN_TIME}|\d{{4}}(?!\d))"
)
_COMPACT = re.compile(r"(?<![\d.,])(20\d{2})(\d{2})(\d{2})(?![\d.,])")
# Six digits, year first as Swedish tills print it ('DATUM: 190214'): see find_short_dates.
_COMPACT_SHORT = re.compile(r"(?<![\d.,:/-])(\d{2})(\d{2})(\d{2})(?![\d.,:/-])")
_DAY_MONTH = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:ST|ND|RD|TH)?\s?[-/ .,]?\s?({_MONTH_ALT})\.?"
    rf"\s?[-/ .,]?\s?(\d{{4}}|\d{{2}})(?!\d)"
)
_MONTH_DAY = re.compile(
    rf"(?<![A-Z])({_MONTH_ALT})\.?\s?(\d{{1,2}})(?:ST|ND|RD|TH)?\s?,?\s?(\d{{4}})(?!\d)"
)
_TIME = re.compile(
    r"(?<![\d.])([01]?\d|2[0-3])\s?[:h]\s?([0-5]\d)(?:\s?:\s?([0-5]\d))?(?:\s?(AM|PM|A\.M\.|P\.M\.))?"
    r"(?![\d])",
    re.IGNORECASE,
)
_TIME_NEXT = re.compile(r"(?:[01]?\d|2[0-3]):[0-5]\d(?!\d)")
_DATE_WORD = re.compile(
    r"DATE|DATUM|FECHA|TARIKH|DATA|DTE|DATO|PAIVAMAARA|DT\b|TGL|TANGGAL", re.IGNORECASE
)
_DIGIT = re.compile(r"\d")
_NOT_PURCHASE = re.compile(r"EXP|VALID|BEST BEFORE|USE BY|DUE DATE|PRINTED|MFG|MFD", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DateMatch:
    """A date found in a line: its reading(s) and whether day-first vs month-first mattered."""

    day_first: dt.date | None
    month_first: dt.date | None
    line_id: int
    start: int
    has_keyword: bool
    has_time: bool
    excluded: bool

    def value(self, prefer_day_first: bool) -> dt.date | None:
        first, second = (
            (self.day_first, self.month_first)
            if prefer_day_first
            else (self.month_first, self.day_first)
        )
        return first if first is not None else second

    @property
    def ambiguous(self) -> bool:
        return (
            self.day_first is not None
            and self.month_first is not None
            and self.day_first != self.month_first
        )


def _year(y: str) -> int:
    n = int(y)
    return n + 2000 if n < 100 else n


def _date(year: int, month: int, day: int) -> dt.date | None:
    if not 1990 <= year <= 2099:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _clean(text: str) -> str:
    return fix_digits(strip_accents(text).upper())


def _inside_code(text: str, start: int, end: int) -> bool:
    """Digits glued to a letter before them or to more numbers ('MI11/3-21-12/480'): a product
    or invoice code that only looks like a date. A letter after is a lost space ('2018TIME'),
    and so is a time after the full stop that ends a date ('2019.09.15.10:57': Hungarian)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if before.isalpha():
        return True
    glued_before = before in "/-." and start > 1 and text[start - 2].isdigit()
    glued_after = after in "/-." and end + 1 < len(text) and text[end + 1].isdigit()
    if glued_after and after == "." and _TIME_NEXT.match(text, end + 1):
        return False
    return glued_before or glued_after


def find_dates(text: str, line_id: int) -> list[DateMatch]:
    """Every date in the text, with both readings where day and month could swap."""
    if not _DIGIT.search(text):
        return []  # every date form has digits (look-alike letters become digits only beside one)
    clean = _clean(text)
    keyword = bool(_DATE_WORD.search(clean))
    has_time = bool(_TIME.search(clean))
    excluded = bool(_NOT_PURCHASE.search(clean))
    out: list[DateMatch] = []

    def add(day_first: dt.date | None, month_first: dt.date | None, start: int) -> None:
        if day_first is None and month_first is None:
            return
        out.append(DateMatch(day_first, month_first, line_id, start, keyword, has_time, excluded))

    for m in _NUMERIC.finditer(clean):
        if _inside_code(clean, m.start(), m.end()):
            continue
        if m.group(1) is not None:
            a, b, c = m.group(1), m.group(3), m.group(4)
        else:
            a, b, c = m.group(5), m.group(7), m.group(8)
        if len(a) == 4:  # ISO order, year first
            iso = _date(int(a), int(b), int(c)) if len(c) <= 2 else None
            add(iso, iso, m.start())
            continue
        if len(a) == 3:
            continue
        year = _year(c)
        add(_date(year, int(b), int(a)), _date(year, int(a), int(b)), m.start())
    for m in _COMPACT.finditer(clean):
        iso = _date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        add(iso, iso, m.start())
    for m in _DAY_MONTH.finditer(clean):
        named = _date(_year(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
        add(named, named, m.start())
    for m in _MONTH_DAY.finditer(clean):
        named = _date(_year(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
        add(named, named, m.start())
    return out


def find_short_dates(text: str, line_id: int, row_text: str) -> list[DateMatch]:
    """Six-digit dates, year first ('190214', as Swedish tills print them), in a line whose
    printed row (`row_text`, the line and its neighbours) has a date word or a clock time.
    Only for a receipt on which `find_dates` finds nothing: six digits are as often a receipt
    or terminal number."""
    row = _clean(row_text)
    keyword = bool(_DATE_WORD.search(row))
    has_time = bool(_TIME.search(row))
    if not (keyword or has_time) or _NOT_PURCHASE.search(row):
        return []
    out = []
    for m in _COMPACT_SHORT.finditer(_clean(text)):
        iso = _date(2000 + int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if iso is not None:
            out.append(DateMatch(iso, iso, line_id, m.start(), keyword, has_time, False))
    return out


def find_time(text: str) -> dt.time | None:
    """The first clock time in the text ('8:13:39 PM', '20:49', '14h05')."""
    clean = _clean(text)
    for m in _TIME.finditer(clean):
        hour, minute = int(m.group(1)), int(m.group(2))
        second = int(m.group(3)) if m.group(3) else 0
        meridiem = (m.group(4) or "").replace(".", "").upper()
        if meridiem:
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if meridiem == "PM" else 0)
        elif ":" not in m.group(0) and "H" not in m.group(0).upper():
            continue
        return dt.time(hour, minute, second)
    return None


# Evidence that a receipt writes month first (the United States, and a few others).
_US_WORDS = re.compile(
    r"\bSALES TAX\b|\bTIP\b|\bGRATUITY\b|\bUSD\b|\bEIN\b|\(\d{3}\)\s?\d{3}-\d{4}"
)


def month_first_evidence(text: str, currency: str | None) -> float:
    """A score > 0 when the receipt looks American (month-first), < 0 when it looks otherwise."""
    upper = text.upper()
    score = 0.0
    if US_STATE_ZIP.search(upper) or US_CITY_STATE.search(upper):
        score += 2.0
    score += 0.5 * len(set(_US_WORDS.findall(upper)))
    if currency == "USD":
        score += 0.5
    elif currency is not None:
        score -= 2.0
    if re.search(r"\b(?:VAT|GST|MWST|TVA|IVA|BTW|SST)\b", upper):
        score -= 1.0
    return score


def parse_date_string(text: str, day_first: bool = True) -> dt.date | None:
    """One date from a short string (an answer key, a user's correction)."""
    found = find_dates(text, 0)
    return found[0].value(day_first) if found else None
