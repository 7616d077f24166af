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


# Digits OCR engines read where a letter was printed ('G5T', 'M0BILE', 'C0MPANY').
_LETTER_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B"})
_WORDLIKE = re.compile(r"(?<![\w])[A-Za-z0158]{3,}(?![\w])")


_ORDINAL = re.compile(r"^\d+(?:ST|ND|RD|TH)$", re.IGNORECASE)


def _fix_word(match: re.Match[str]) -> str:
    token = match.group(0)
    if _ORDINAL.match(token):
        return token  # '1ST FLOOR'
    letters = sum(c.isalpha() for c in token)
    # A token of letters with a digit or two among them is a misread word; codes such as
    # '1A' or 'U5' have as many digits as letters, or too few letters to be a word.
    if letters >= 2 and letters > len(token) - letters > 0:
        return token.translate(_LETTER_LOOKALIKES)
    return token


@functools.lru_cache(maxsize=8192)
def fix_letters(text: str) -> str:
    """Read look-alike digits inside words as letters: 'G5T' -> 'GST', 'M0BILE' -> 'MOBILE'.
    For recognising keywords only; the text shown keeps what was printed."""
    return _WORDLIKE.sub(_fix_word, text)


# A look-alike letter before a digit, not after another letter: inside or at the start of a
# number ('O3-4131', '40I70', '(I39386-X)'). A letter ending a number stays a letter: it is the
# check letter of a registration number ('860671-D', '1219716T'); 'SS21' is a code.
_LETTER_IN_NUMBER = re.compile(r"(?<![A-Za-z])[OoDQSsIl|iZzBGT](?=\d)")


# A registration number whose digits were read as look-alike letters, even after a letter
# ('BOZ7Z5-U' for '807275-U'): six look-alikes or digits, two of them real digits, then a
# hyphen and the check letter.
_REG_SHAPED = re.compile(
    r"(?<![A-Za-z0-9])(?=(?:[A-Za-z]*\d){2})[0-9OoDQSsIl|iZzBGT]{6,}(?=\s*-\s*[A-Z]\b)"
)


def _as_digit(match: re.Match[str]) -> str:
    return match.group(0).translate(_DIGIT_LOOKALIKES)


@functools.lru_cache(maxsize=8192)
def ocr_clean(text: str) -> str:
    """The text with look-alike misreads undone, words first ('G5T'), then numbers: the form in
    which stop words, phone and registration numbers are recognised on OCR output. Same
    length as `text`, so a match in it is a match at the same place in the printed text."""
    return _LETTER_IN_NUMBER.sub(_as_digit, _REG_SHAPED.sub(_as_digit, fix_letters(text)))


#: Latin letters with a stroke that Unicode does not decompose into a base and a mark.
_STROKED = str.maketrans("ŁłØøĐđĦħ", "LlOoDdHh")


def strip_accents(text: str) -> str:
    """The text without diacritics: 'Café' -> 'Cafe', 'ZAPŁATY' -> 'ZAPLATY'."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_STROKED))
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


_LETTERS = re.compile(r"[^\W\d_]+")
#: Capitals inside a word that are printed so: 'McDonald', 'MacArthur', legal forms.
_INNER_CAPITALS = re.compile(r"(?:Mc|Mac)[A-Z][a-z]+|GmbH|mbH|KGaA|SpA|SpK|eK|eV|SaRL|BVBA|NyRt")


def tidy_case(text: str) -> str:
    """A name or address with the recognizer's case slips mended, for display: a word in
    neither upper, lower nor title case ('JohOR', 'SDn', 'PERmAs') takes the case most of the
    value's other words are printed in, capitals ('JohOR BAHRU' -> 'JOHOR BAHRU') or title
    case ('Jalan PERmAs Jaya' -> 'Jalan Permas Jaya').

    The recognizer reads most capitals right but calls some of them small (their shapes are
    the same at receipt print sizes: 'O', 'S', 'W'), and a value read that way is what the
    dashboard shows and the accountant exports. Words in a regular case are left as read, so
    are names and legal forms printed with inner capitals ('McDonald', 'GmbH'). Answer keys
    are compared with case folded, so scores do not change.
    """
    words = [w for w in _LETTERS.findall(text) if len(w) > 1]
    irregular = [w for w in words if not _regular(w)]
    if not irregular:
        return text
    upper = sum(w.isupper() for w in words)
    title = sum(w.istitle() for w in words)
    fix = str.upper if upper >= title else str.capitalize
    return _LETTERS.sub(lambda m: m.group(0) if _regular(m.group(0)) else fix(m.group(0)), text)


def _regular(word: str) -> bool:
    return (
        len(word) < 2
        or word.isupper()
        or word.islower()
        or word.istitle()
        or bool(_INNER_CAPITALS.fullmatch(word))
    )
