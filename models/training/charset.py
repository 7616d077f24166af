"""The recognizer's alphabet: printable ASCII, Latin-1 and Latin Extended-A, currency signs."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
_LATIN1 = "".join(chr(c) for c in range(0xA1, 0x100) if c != 0xAD)
_LATIN_EXT_A = "".join(chr(c) for c in range(0x100, 0x180))
_EXTRA = "€₹₺₱₩₫₽₴₦₪ŒœŠšŽžŸƒ•–—…№™"

#: Index 0 is the CTC blank; character i of CHARSET is class i + 1.
CHARSET = "".join(dict.fromkeys(_ASCII + _LATIN1 + _LATIN_EXT_A + _EXTRA))

#: Characters seen in real text that map onto a charset member.
_FOLD = {
    "\u00a0": " ",
    "\t": " ",
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2212": "-",
}


class Charset:
    """Maps text to class ids and back; class 0 is the CTC blank."""

    def __init__(self, chars: str = CHARSET) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("charset has duplicate characters; each character must appear once")
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def num_classes(self) -> int:
        """Characters plus the blank."""
        return len(self.chars) + 1

    def normalize(self, text: str) -> str:
        """NFC, fold look-alikes onto members, and drop what the charset cannot write."""
        text = unicodedata.normalize("NFC", text)
        out = []
        for c in text:
            if c in self._index:
                out.append(c)
                continue
            folded = _FOLD.get(c, c)
            if folded in self._index:
                out.append(folded)
                continue
            base = unicodedata.normalize("NFD", folded)[:1]
            if base in self._index:
                out.append(base)
        return " ".join("".join(out).split())

    def encode(self, text: str) -> list[int]:
        """Class ids of a text; raises KeyError naming the first character not in the charset."""
        try:
            return [self._index[c] for c in text]
        except KeyError as exc:
            raise KeyError(
                f"character {exc.args[0]!r} is not in the charset; normalize() first"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of class ids (no CTC collapsing); blanks are skipped."""
        return "".join(self.chars[i - 1] for i in ids if 0 < i <= len(self.chars))

    def ctc_collapse(self, ids: Sequence[int]) -> list[int]:
        """Greedy CTC: merge repeats, then drop blanks."""
        out, prev = [], -1
        for i in ids:
            if i not in (prev, 0):
                out.append(int(i))
            prev = i
        return out
