"""Per-line features of a receipt's top lines, for the learned merchant and address scorers.

Every feature is general (geometry, character classes, keyword and pattern hits in many
languages, the rules' own scores and choices); none names a particular shop or country alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

import numpy as np

from models.extraction.address import (
    address_text,
    evidence_of,
    has_postcode,
    is_stop,
    names_place,
    starts_with_number,
    street_words,
)
from models.extraction.keywords import label_of
from models.extraction.layout import Line, Page
from models.extraction.linear import Matrix
from models.extraction.merchant import (
    clean_name,
    has_legal_form,
    is_not_name,
    is_owned_by,
    name_score,
)

#: How many lines from the top of the receipt are scored.
MAX_LINES = 12

_PHONE = re.compile(r"(?:TEL|PHONE|FAX|H/P|MOBILE)\b|\+?\d[\d\s()\-]{7,}\d", re.IGNORECASE)
_DATEISH = re.compile(r"\d{1,4}\s*[/\-.]\s*\d{1,2}\s*[/\-.]\s*\d{2,4}|\d{1,2}:\d{2}")
_MONEY = re.compile(r"\d[.,]\d{2}\s*$")
_REG = re.compile(r"\(?\s*\d{4,}\s*-?\s*[A-Z]\s*\)|\b(?:REG|ROC|CO NO|COMPANY NO)\b", re.IGNORECASE)

BASE = (
    "index",
    "rel_y",
    "font",
    "width",
    "centred",
    "gap_above",
    "gap_below",
    "shares_row",
    "log_chars",
    "words",
    "upper",
    "digits",
    "letters",
    "punct",
    "legal",
    "not_name",
    "owned_by",
    "evidence",
    "streets",
    "postcode",
    "place",
    "house_number",
    "stop",
    "phone",
    "dateish",
    "money",
    "amount_label",
    "opens_bracket",
    "ends_comma",
    "registration",
    "name_score",
    "rule_name",
    "rule_address",
    "after_name",
    "before_address",
    "after_address",
)
#: Base features repeated for the previous and the next line.
NEIGHBOUR = (
    "font",
    "digits",
    "legal",
    "evidence",
    "stop",
    "name_score",
    "rule_name",
    "rule_address",
)
NAMES = (
    *BASE,
    *(f"prev_{n}" for n in NEIGHBOUR),
    "no_prev",
    *(f"next_{n}" for n in NEIGHBOUR),
    "no_next",
)
_NEIGHBOUR_INDEX = [BASE.index(n) for n in NEIGHBOUR]


def top_lines(page: Page) -> list[Line]:
    return list(page.lines[:MAX_LINES])


def _shares(text: str) -> tuple[float, float, float, float]:
    """(upper-case share of letters, digit, letter and punctuation shares of non-space chars)."""
    chars = len(text) - sum(map(str.isspace, text))
    if not chars:
        return 0.0, 0.0, 0.0, 0.0
    letters = sum(map(str.isalpha, text))
    digits = sum(map(str.isdigit, text))
    upper = sum(map(str.isupper, text)) / letters if letters else 0.0
    return upper, digits / chars, letters / chars, (chars - letters - digits) / chars


def _base(
    page: Page, lines: list[Line], i: int, rule_name: Collection[int], bounds: tuple[int, int, int]
) -> list[float]:
    """The line's own features; `bounds` = (name end, address start, address end) indices."""
    line = lines[i]
    text = line.text.strip()
    n = len(lines)
    upper, digits, letters, punct = _shares(text)
    gap_above = (line.y0 - lines[i - 1].y1) / line.height if i > 0 else 3.0
    gap_below = (lines[i + 1].y0 - line.y1) / line.height if i + 1 < n else 3.0
    name_end, addr_start, addr_end = bounds
    cut = address_text(line)
    cx = (line.x0 + line.x1) / 2
    return [
        i / max(n - 1, 1),
        line.rel_y,
        min(line.rel_height, 3.0),
        (line.x1 - line.x0) / page.width,
        1.0 - min(abs(cx - page.width / 2) / (page.width / 2), 1.0),
        max(min(gap_above, 5.0), -1.0),
        max(min(gap_below, 5.0), -1.0),
        float(len(page.row_of(line)) > 1),
        math.log1p(len(text)),
        min(len(text.split()), 10) / 10,
        upper,
        digits,
        letters,
        punct,
        float(has_legal_form(text)),
        float(is_not_name(text)),
        float(is_owned_by(text)),
        min(evidence_of(cut), 5.0),
        float(min(street_words(cut), 3)),
        float(has_postcode(text)),
        float(names_place(text)),
        float(starts_with_number(text)),
        float(is_stop(page, line)),
        float(bool(_PHONE.search(text))),
        float(bool(_DATEISH.search(text))),
        float(bool(_MONEY.search(text))),
        float(label_of(text) is not None),
        float(text.startswith("(")),
        float(text.endswith(",")),
        float(bool(_REG.search(text))),
        max(min(name_score(line, i), 5.0), -5.0),
        float(line.id in rule_name),
        float(addr_start <= i <= addr_end),
        max(min(i - name_end, 4), -4) / 4 if name_end >= 0 else 0.0,
        max(min(addr_start - i, 4), -4) / 4,
        max(min(i - addr_end, 4), -4) / 4,
    ]


def header_features(
    page: Page, lines: list[Line], rule_name: Collection[int], rule_address: Collection[int]
) -> Matrix:
    """One row of `NAMES` features per line of `lines` (the receipt's top lines in order)."""
    name_idx = [k for k, ln in enumerate(lines) if ln.id in rule_name]
    addr_idx = [k for k, ln in enumerate(lines) if ln.id in rule_address]
    n = len(lines)
    bounds = (max(name_idx, default=-1), min(addr_idx, default=n), max(addr_idx, default=n))
    base = [_base(page, lines, i, rule_name, bounds) for i in range(n)]
    zeros = [0.0] * len(NEIGHBOUR)
    rows = []
    for i, row in enumerate(base):
        prev = [base[i - 1][k] for k in _NEIGHBOUR_INDEX] if i > 0 else zeros
        nxt = [base[i + 1][k] for k in _NEIGHBOUR_INDEX] if i + 1 < len(base) else zeros
        rows.append([*row, *prev, float(i == 0), *nxt, float(i + 1 == len(base))])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(NAMES))


def name_text(lines: list[Line]) -> str:
    text = " ".join(clean_name(ln.text) for ln in lines).strip()
    return text.strip(" ,.:;-") or text


def address_value(lines: list[Line]) -> str:
    return " ".join(address_text(ln) for ln in lines)
