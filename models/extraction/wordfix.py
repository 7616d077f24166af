"""Repair OCR misreads of common header words where the recognizer itself was unsure.

Our recognizer misreads letters of big or dot-matrix header fonts and cuts words at box edges
('KAWASAN PERINDUSTRIA', 'SETANGOR', 'MALAYSLA'), and SROIE scores a name or an address as one
string: one wrong letter loses the field. From ground-truth lines the same extraction reads
these receipts right, so the loss is the reading, not the choice.

Two things tell a misread from a real word. The recognizer reports a confidence per character
(`OcrLine.char_confidences`), and a misread letter often has a low one. And header words
repeat across shops: street and building words, towns, states, legal forms. So a word that is
neither in the lexicon nor a known word is replaced by the lexicon word it is *cheapest* to
have misread: changing or dropping a character costs that character's confidence (half for a
look-alike: O/0, I/1/L, S/5, B/8 ...), a character read at `SURE` or more is never changed, a
dropped character costs `INSERT_COST` inside the word and `EDGE_INSERT_COST` at an end of the
word only where that end is the end of its line (a box cut short: 'BAHRU,JOHO'; elsewhere a
letter more makes another real word: 'BEVERAGE' / 'BEVERAGES'). The repair must cost at most
`budget(len)` and beat the next lexicon word by `MARGIN`.

Why so strict. Measured on our own OCR of the SROIE train split, with the lexicon rebuilt
without each receipt's shop (5 shop-grouped folds): the character confidence separates
misreads from real words far less than hoped ('KEDAI' read as such at 0.11 on its 'I' is one
cheap step from 'KEDAH'; 'BEST' from 'BESI'; 'LAMAN' from 'TAMAN'), and with four-letter words
and confident changes allowed the repairs broke as many names as they fixed (company 85.6 ->
84.8 %). Words of `MIN_LEN` (6) letters or more with only unsure characters changed fixed three
addresses and broke nothing; that is what is kept. Most misreads of our own OCR (confident
ones such as 'GALURRY', 'JIN' for 'JLN', lost words) are beyond any such repair.

The lexicon (`header_words.json`) is the generic hand list of `lexicon.WORDS` plus the words of
the SROIE *train* keys' company and address fields that occur at two or more shops, and the
known words are every word of the train transcripts at two or more shops ('BEST', 'KEDAI',
'GOODS'); no shop's own name is learnt. Both are built by `receipts eval header-words`
(`models.evaluation.header_words`). Only lines in the top half of the text are repaired (the
name and address; items, dates and amounts are left as read), and ground-truth lines carry no
character confidences: they are never changed. A repaired line keeps its box; the repaired
characters take the confidence of the correction (at most the word's mean before), so
`reading_confidence` still says the reading was unsure.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.extraction.lexicon import WORDS as GENERIC_WORDS
from models.receipt import OcrLine

LEXICON_FILE = Path(__file__).with_name("header_words.json")

#: Cost of a character the recognizer dropped inside a word (it has no confidence of its own).
INSERT_COST = 0.8
#: ... and at the word's start or end, where the word starts or ends its line (a box cut short:
#: 'JOHOR BAHRU,JOHO'); elsewhere a letter more or less at either end makes another real word
#: ('BEVERAGE' / 'BEVERAGES', 'STATE' / 'ESTATE'), so it is not allowed.
EDGE_INSERT_COST = 0.6
#: A look-alike change (O for 0, I for L ...) costs this share of the character's confidence.
LOOKALIKE_SHARE = 0.5
#: A character read at this confidence or more is never changed or dropped.
SURE = 0.5
#: The best lexicon word must be cheaper than the second best by this much.
MARGIN = 0.25
#: Words shorter than this are never changed (too many real words are one letter apart:
#: 'AIK' / 'AIR', 'KEDAI' / 'KEDAH', 'BEST' / 'BESI').
MIN_LEN = 6
#: Only lines in this top share of the text are repaired: the name and address are printed
#: there, and items, dates and amounts further down are left exactly as read.
TOP_SHARE = 0.5

_LOOKALIKES = frozenset(
    (a, b)
    for group in ("O0QDC", "I1LJT!|", "S5", "B8R", "UVW", "MNH", "EF", "G6C", "Z2", "KX", "PR")
    for a in group
    for b in group
    if a != b
)
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_FORBIDDEN = 9.0


def budget(length: int) -> float:
    """The most a repair of a word of `length` characters may cost: 0.15 of a certain
    character per letter, at most 1."""
    return min(0.15 * length, 1.0)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Words to repair towards (upper case, indexed by every deletion of up to two characters)
    and words that are real though not among them (never repaired)."""

    words: frozenset[str]
    known: frozenset[str]
    index: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, words: Iterable[str], known: Iterable[str] = ()) -> Lexicon:
        kept = frozenset(w.upper() for w in words if len(w) >= 2 and w.isalpha())
        index: dict[str, set[str]] = {}
        for w in kept:
            for key in _deletions(w):
                index.setdefault(key, set()).add(w)
        return cls(
            kept,
            frozenset(w.upper() for w in known),
            {k: tuple(sorted(v)) for k, v in index.items()},
        )

    def candidates(self, word: str) -> set[str]:
        """Lexicon words within two deletions of `word` on each side (a superset of the words
        within two edits)."""
        found: set[str] = set()
        for key in _deletions(word):
            found.update(self.index.get(key, ()))
        return found


def _deletions(word: str) -> set[str]:
    one = {word[:i] + word[i + 1 :] for i in range(len(word))}
    two = {w[:i] + w[i + 1 :] for w in one for i in range(len(w))} if len(word) > 3 else set()
    return {word, *one, *two}


def cost(
    read: str,
    confidences: Sequence[float],
    word: str,
    *,
    open_start: bool = False,
    open_end: bool = False,
) -> float:
    """The cheapest way the recognizer read `word` as `read` (both upper case): a changed or
    extra character costs its confidence (`LOOKALIKE_SHARE` of it for a look-alike), a dropped
    one `INSERT_COST` inside the word; at its start or end only where the word is open there
    (starts or ends its line), for `EDGE_INSERT_COST`."""
    n, m = len(read), len(word)
    start_ins = EDGE_INSERT_COST if open_start else _FORBIDDEN
    end_ins = EDGE_INSERT_COST if open_end else _FORBIDDEN
    prev = [j * start_ins for j in range(m + 1)]
    for i in range(1, n + 1):
        c = confidences[i - 1] if confidences[i - 1] < SURE else _FORBIDDEN
        insert = end_ins if i == n else INSERT_COST
        cur = [prev[0] + c] + [0.0] * m
        for j in range(1, m + 1):
            a, b = read[i - 1], word[j - 1]
            change = 0.0 if a == b else c * (LOOKALIKE_SHARE if (a, b) in _LOOKALIKES else 1.0)
            cur[j] = min(prev[j - 1] + change, prev[j] + c, cur[j - 1] + insert)
        prev = cur
    return prev[m]


def best_repair(
    read: str,
    confidences: Sequence[float],
    lexicon: Lexicon,
    *,
    open_start: bool = False,
    open_end: bool = False,
) -> tuple[str, float] | None:
    """The lexicon word `read` (upper case) is a misread of, and its cost; None when the word is
    in the lexicon or known, too short, or no word is cheap enough and clearly cheapest."""
    if len(read) < MIN_LEN or read in lexicon.words or read in lexicon.known:
        return None
    if sum(ch.isalpha() for ch in read) < MIN_LEN - 1:
        return None
    scored = sorted(
        (cost(read, confidences, w, open_start=open_start, open_end=open_end), w)
        for w in lexicon.candidates(read)
        if abs(len(w) - len(read)) <= 2
    )
    if not scored or scored[0][0] > budget(len(read)):
        return None
    if len(scored) > 1 and scored[1][0] - scored[0][0] < MARGIN:
        return None
    return scored[0][1], scored[0][0]


def _restyle(word: str, original: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if sum(c.islower() for c in letters) > len(letters) / 2:
        return word.lower() if original[:1].islower() else word.capitalize()
    return word


def repair_line(line: OcrLine, lexicon: Lexicon) -> OcrLine:
    """The line with its misread lexicon words repaired (unchanged without char confidences)."""
    chars = line.char_confidences
    if chars is None or len(chars) != len(line.text):
        return line
    text, confs, last, changed = [], [], 0, False
    stripped = line.text.strip()
    first = len(line.text) - len(line.text.lstrip())
    for m in _TOKEN.finditer(line.text):
        token = m.group(0)
        if sum(c.isdigit() for c in token) * 2 >= len(token):
            continue  # a number, or a code such as 'U13' or '1A'
        found = best_repair(
            token.upper(),
            chars[m.start() : m.end()],
            lexicon,
            open_start=m.start() == first,
            open_end=m.end() == first + len(stripped),
        )
        if found is None:
            continue
        word, spent = found
        text.append(line.text[last : m.start()])
        confs.extend(chars[last : m.start()])
        mean = sum(chars[m.start() : m.end()]) / len(token)
        text.append(_restyle(word, token))
        confs.extend([round(min(mean, 1.0 - spent / len(word)), 4)] * len(word))
        last, changed = m.end(), True
    if not changed:
        return line
    text.append(line.text[last:])
    confs.extend(chars[last:])
    return line.model_copy(update={"text": "".join(text), "char_confidences": confs})


def repair_lines(lines: Sequence[OcrLine], lexicon: Lexicon | None = None) -> list[OcrLine]:
    """The lines with misread lexicon words repaired (`repair_line`) in the top `TOP_SHARE` of
    the text, where the name and address are printed."""
    if not any(ln.char_confidences for ln in lines):
        return list(lines)
    lex = default_lexicon() if lexicon is None else lexicon
    tops = [min(p[1] for p in ln.box) for ln in lines]
    bottoms = [max(p[1] for p in ln.box) for ln in lines]
    limit = min(tops) + TOP_SHARE * (max(bottoms) - min(tops))
    return [
        repair_line(ln, lex) if (top + bottom) / 2 < limit else ln
        for ln, top, bottom in zip(lines, tops, bottoms, strict=True)
    ]


def load_words(path: Path = LEXICON_FILE) -> tuple[list[str], list[str]]:
    """The train-derived header words and known words of `header_words.json` (empty lists
    when the file is absent)."""
    if not path.exists():
        return [], []
    data = json.loads(path.read_text())
    return [str(w) for w in data["words"]], [str(w) for w in data["known"]]


@functools.cache
def default_lexicon() -> Lexicon:
    """The generic hand list and the committed train-derived header words."""
    words, known = load_words()
    return Lexicon.of([*GENERIC_WORDS, *words], known)
