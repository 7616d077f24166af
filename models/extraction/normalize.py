"""Text clean-up for matching: OCR digit confusions, keyword folding, accent stripping."""

from __future__ import annotations

import functools
import re
import unicodedata

# Letters OCR engines read where a digit was printed; applied only inside numeric-looking tokens.
_DIGIT_LOOKALIKES = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "S": "5",
        "s": "5",
        "I": "1",
        "l": "1",
        "|": "1",
        "i": "1",
        "!": "1",
        "Z": "2",
        "z": "2",
        "B": "8",
        "G": "6",
        "g": "9",
        "q": "9",
        "T": "7",
    }
)
_TOKEN = re.compile(r"[0-9A-Za-z|!]*[0-9][0-9A-Za-z|!.,:/\-]*|[0-9A-Za-z|!]+[.,][0-9A-Za-z|!]+")
_LOOKALIKE_CHARS = set("OoDQSsIl|i!ZzBGgqT")


def _fix_token(match: re.Match[str]) -> str:
    token = match.group(0)
    digits = sum(c.isdigit() for c in token)
    letters = [c for c in token if c.isalpha() or c in "|!"]
    if digits == 0 or not letters:
        return token
    # Only a token that is mostly digits, whose letters are all look-alikes, is a misread number.
    if all(c in _LOOKALIKE_CHARS for c in letters) and digits >= len(letters):
        return token.translate(_DIGIT_LOOKALIKES)
    return token


@functools.lru_cache(maxsize=8192)
def fix_digits(text: str) -> str:
    """Read look-alike letters inside numeric tokens as digits: '1O.5O' -> '10.50', 'S.00' stays."""
    return _TOKEN.sub(_fix_token, text)


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Upper case, no accents, punctuation as single spaces: the form keywords are matched in."""
    text = strip_accents(text).upper()
    text = re.sub(r"[^A-Z0-9%]+", " ", text)
    return f" {text.strip()} "


def squash(text: str) -> str:
    """Letters and digits only, upper case: for comparing names with broken spacing."""
    return re.sub(r"[^A-Z0-9]", "", strip_accents(text).upper())
