"""Decoding the line recognizer's CTC output: greedy, or a prefix beam search with a language model.

Why a language model: the recognizer reads a line through 4-pixel windows and knows nothing of
words, so a faded 'JALAN' comes out 'JALAM' and an 'S' next to digits becomes a '5'. On receipts
that costs whole fields: an address of four lines is right only when every line is. A small
character n-gram model of receipt text (`CharLM`) knows that 'JALA' is followed by 'N' and that
'RM' is followed by digits; a CTC prefix beam search (Hannun et al., 2014) weighs the network's
evidence against it, `alpha` the model's weight and `beta` a bonus per character that keeps the
search from preferring short texts.

The model is Witten-Bell interpolated (every order backs off to the shorter context, down to a
uniform distribution over the characters it saw plus one for the unseen), case-folded (it
judges spelling; upper or lower case stays the network's choice), and stored as plain counts in
a gzip'd JSON file listed in the model folder's manifest under `language_model`, so it is
checked by sha256 and travels in OTA releases like the networks.

Beam search costs Python time, so the engine searches only lines the network is unsure of
(any character below `beam_below`); confident lines keep the greedy reading, which the search
would not change anyway. Characters of a searched line get their confidence from a forced
(Viterbi) alignment of the chosen text to the network's output: a character the language model
put in against the image keeps the image's low probability.
"""

from __future__ import annotations

import gzip
import json
import math
from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from models.training.charset import Charset

#: Context before a line's first character and the symbol after its last.
BOS = "\x02"
EOS = "\x03"
FORMAT = "receipt-manager/char-ngram-wb/2"
#: Scores kept between calls; cleared when full.
CACHE_SIZE = 65536


class LanguageModelError(ValueError):
    """A language model file is missing, unreadable or not one of ours."""


def fold(text: str) -> str:
    """The model's view of a text: upper case per character (lengths kept), spaces collapsed."""
    out = []
    for ch in " ".join(text.split()):
        up = ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


class CharLM:
    """A case-folded character n-gram model with Witten-Bell interpolation; see the module doc.

    Each context keeps the string of characters seen after it, their counts (an unsigned int
    array in the same order) and their sum: about 30 MB for 90 k contexts, where a dict per
    context took twice that, which matters on a 1 GB scanner.
    """

    def __init__(self, order: int, table: dict[str, tuple[str, array[int], int]]) -> None:
        """`table`: context -> (characters seen after it, their counts, the counts' sum)."""
        if order < 1:
            raise LanguageModelError(f"order must be at least 1, not {order}")
        self.order = order
        self._next = table
        self._uniform = 1.0 / (len(self._next.get("", ("",))[0]) + 1)
        self._cache: dict[tuple[str, str], float] = {}

    @classmethod
    def build(cls, lines: Iterable[str], order: int = 6, min_count: int = 1) -> CharLM:
        """Count every n-gram up to `order` of the folded lines; contexts of the highest orders
        seen fewer than `min_count` times are dropped (they back off to shorter ones)."""
        counts: dict[str, dict[str, int]] = {}
        for line in lines:
            text = fold(line)
            if not text:
                continue
            padded = BOS * (order - 1) + text + EOS
            for i in range(order - 1, len(padded)):
                ch = padded[i]
                for k in range(order):
                    nxt = counts.setdefault(padded[i - k : i], {})
                    nxt[ch] = nxt.get(ch, 0) + 1
        if min_count > 1:
            counts = {h: n for h, n in counts.items() if len(h) < 2 or sum(n.values()) >= min_count}
        table = {}
        for h, nxt in counts.items():
            chars = "".join(sorted(nxt))
            numbers = array("I", (nxt[c] for c in chars))
            table[h] = (chars, numbers, sum(numbers))
        return cls(order, table)

    @property
    def contexts(self) -> int:
        """How many contexts (of every length) have counts."""
        return len(self._next)

    def logprob(self, context: str, char: str) -> float:
        """log P(char | the context's last order-1 characters), both folded; `char` may be EOS."""
        return self.folded_logprob(fold(context), char if char == EOS else fold(char) or " ")

    def folded_logprob(self, context: str, char: str) -> float:
        """`logprob` of an already folded context and character (the search's hot path)."""
        h = (BOS * (self.order - 1) + context)[-(self.order - 1) :] if self.order > 1 else ""
        key = (h, char)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        p = self._uniform
        for k in range(len(h) + 1):
            entry = self._next.get(h[len(h) - k :])
            if entry is None:
                break  # a longer context than any seen: the shorter estimate stands
            chars, numbers, total = entry
            i = chars.find(char)
            seen = numbers[i] if i >= 0 else 0
            p = (seen + len(chars) * p) / (total + len(chars))
        value = math.log(p)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()  # contexts repeat within a line's search, rarely across pages
        self._cache[key] = value
        return value

    def line_logprob(self, text: str) -> float:
        """log P of a whole line, its end included."""
        folded = fold(text)
        total = 0.0
        for i, ch in enumerate(folded):
            total += self.folded_logprob(folded[:i], ch)
        return total + self.folded_logprob(folded, EOS)

    def save(self, path: Path) -> None:
        """Write the model as gzip'd text, deterministic for the same counts: a JSON header
        line, then one line per context: context, characters, counts (tab-separated; folded
        text has no tabs or newlines)."""
        header = json.dumps({"format": FORMAT, "order": self.order}) + "\n"
        with path.open("wb") as f, gzip.GzipFile("", "wb", fileobj=f, mtime=0) as gz:
            gz.write(header.encode("utf-8"))
            for h in sorted(self._next):
                chars, numbers, _ = self._next[h]
                row = f"{h}\t{chars}\t{','.join(map(str, numbers))}\n"
                gz.write(row.encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> CharLM:
        """Read a file written by `save`; LanguageModelError if it is not one."""
        table: dict[str, tuple[str, array[int], int]] = {}
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
                header = json.loads(f.readline())
                if not isinstance(header, dict) or header.get("format") != FORMAT:
                    raise LanguageModelError(f"{path} is not a {FORMAT} file")
                order = header.get("order")
                if not isinstance(order, int):
                    raise LanguageModelError(f"{path} has no order")
                for number, row in enumerate(f, 2):
                    h, chars, numbers = row.rstrip("\n").split("\t")
                    values = array("I", (int(v) for v in numbers.split(",")))
                    if len(values) != len(chars):
                        raise ValueError(
                            f"line {number}: {len(chars)} characters, {len(values)} counts"
                        )
                    table[h] = (chars, values, sum(values))
        except LanguageModelError:
            raise
        except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
            raise LanguageModelError(f"{path} is not a readable language model: {exc}") from exc
        return cls(order, table)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [T, C] logits."""
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(z / z.sum(axis=-1, keepdims=True), np.float64)


def greedy_path(probs: np.ndarray) -> tuple[list[int], list[float]]:
    """Best class per step, repeats merged, blanks dropped; each class's best step probability."""
    best = probs.argmax(axis=-1)
    classes: list[int] = []
    confs: list[float] = []
    prev = -1
    for t, best_k in enumerate(best):
        k = int(best_k)
        if k not in (0, prev):
            classes.append(k)
            confs.append(float(probs[t, k]))
        elif k != 0:
            confs[-1] = max(confs[-1], float(probs[t, k]))
        prev = k
    return classes, confs


class _Prefix:
    """A beam entry: probability of ending in a blank / in its last class, its language-model
    log score and its folded text (the model's context)."""

    __slots__ = ("blank", "last", "lm", "text")

    def __init__(self, lm: float, text: str) -> None:
        self.blank = 0.0
        self.last = 0.0
        self.lm = lm
        self.text = text

    def score(self, length: int, alpha: float, beta: float) -> float:
        p = self.blank + self.last
        return (math.log(p) if p > 0 else -1e30) + alpha * self.lm + beta * length


def beam_search(
    probs: np.ndarray,
    charset: Charset,
    lm: CharLM,
    *,
    alpha: float,
    beta: float,
    beam: int = 8,
    prune: float = 1e-3,
) -> list[int]:
    """The classes of the best line under network probabilities [T, C] and the language model.

    A prefix's score is log P_ctc + alpha * log P_lm + beta * length; the line's end is scored
    by the model too. Per step only classes above `prune` extend a prefix.
    """
    chars = charset.chars
    start = _Prefix(0.0, "")
    start.blank = 1.0
    beams: dict[tuple[int, ...], _Prefix] = {(): start}
    for t in range(probs.shape[0]):
        row = probs[t]
        cands = [int(c) for c in np.flatnonzero(row > prune) if c != 0]
        p_blank = float(row[0])
        nxt: dict[tuple[int, ...], _Prefix] = {}
        for prefix, old in beams.items():
            entry = nxt.get(prefix)
            if entry is None:
                entry = nxt[prefix] = _Prefix(old.lm, old.text)
            entry.blank += (old.blank + old.last) * p_blank
            last = prefix[-1] if prefix else -1
            if last >= 0:
                entry.last += old.last * float(row[last])
            for c in cands:
                grown = (*prefix, c)
                child = nxt.get(grown)
                if child is None:
                    ch = fold(chars[c - 1]) or " "
                    child = _Prefix(old.lm + lm.folded_logprob(old.text, ch), old.text + ch)
                    nxt[grown] = child
                pc = float(row[c])
                child.last += old.blank * pc if c == last else (old.blank + old.last) * pc
        top = sorted(nxt.items(), key=lambda kv: kv[1].score(len(kv[0]), alpha, beta))[-beam:]
        norm = max(v.blank + v.last for _, v in top) or 1.0
        for _, v in top:  # rescale so long lines never underflow; ranks are unchanged
            v.blank /= norm
            v.last /= norm
        beams = dict(top)

    def final(item: tuple[tuple[int, ...], _Prefix]) -> float:
        prefix, v = item
        return v.score(len(prefix), alpha, beta) + alpha * lm.folded_logprob(v.text, EOS)

    return list(max(beams.items(), key=final)[0])


def aligned_confidences(probs: np.ndarray, classes: list[int]) -> list[float]:
    """Each class's best probability over the steps a forced (Viterbi) CTC alignment gives it."""
    if not classes:
        return []
    steps = probs.shape[0]
    states = [0]
    for c in classes:
        states += [c, 0]
    n = len(states)
    lab = np.array(states)
    logp = np.log(np.maximum(probs[:, lab], 1e-30))  # [T, S]
    neg = -1e30
    # skip transitions s-2 -> s allowed onto a class that differs from the class two back
    skip = np.zeros(n, bool)
    for s in range(2, n):
        skip[s] = lab[s] != 0 and lab[s] != lab[s - 2]
    score = np.full(n, neg)
    score[0] = logp[0, 0]
    if n > 1:
        score[1] = logp[0, 1]
    back = np.zeros((steps, n), np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, steps):
        stay = score
        step1 = np.concatenate(([neg], score[:-1]))
        step2 = np.where(skip, np.concatenate(([neg, neg], score[:-2])), neg)
        choice = np.argmax(np.stack([stay, step1, step2]), axis=0)
        best = np.maximum(np.maximum(stay, step1), step2)
        back[t] = choice
        score = best + logp[t]
    s = n - 1 if n == 1 or score[n - 1] >= score[n - 2] else n - 2
    confs = [0.0] * len(classes)
    for t in range(steps - 1, -1, -1):
        if s % 2 == 1:
            k = s // 2
            confs[k] = max(confs[k], float(probs[t, lab[s]]))
        s -= int(back[t, s])
        if s < 0:
            break
    return confs


class LineDecoder:
    """Greedy CTC, or the beam search with a language model for lines the network is unsure of.

    `beam_below`: a line is searched when any of its greedy characters' confidence is below it
    (1.0 searches every line, 0.0 none).
    """

    def __init__(
        self,
        charset: Charset,
        lm: CharLM | None = None,
        *,
        alpha: float = 0.5,
        beta: float = 1.0,
        beam: int = 8,
        beam_below: float = 0.95,
    ) -> None:
        self.charset = charset
        self.lm = lm
        self.alpha = alpha
        self.beta = beta
        self.beam = beam
        self.beam_below = beam_below

    def decode(self, logits: np.ndarray) -> tuple[str, list[float]]:
        """A line's text and one confidence per character from its logits [T, C]."""
        probs = softmax(logits)
        classes, confs = greedy_path(probs)
        if self.lm is not None and self.beam > 1 and confs and min(confs) < self.beam_below:
            found = beam_search(
                probs, self.charset, self.lm, alpha=self.alpha, beta=self.beta, beam=self.beam
            )
            if found != classes:
                classes, confs = found, aligned_confidences(probs, found)
        return self.charset.decode(classes), confs
