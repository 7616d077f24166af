"""Which shop a labelled receipt comes from, and cross-validation folds that keep a shop whole.

The SROIE train split is dominated by a few shops (one bakery has 40 receipts), while the
validation split is mostly shops the extractor has never seen. A fold assignment that spreads
one shop over several folds scores a receipt with rules and calibration tuned on its shop's
other receipts; grouping by shop scores every receipt as if its shop were new.

A receipt's *shop key* is its company key folded to letters and digits after dropping what
varies between receipts of one shop: anything in brackets ('MR DIY (M) SDN BHD',
'(KUCHAI)'), legal forms and their OCR-ish spellings ('SDN BHD', 'S/B', 'BHD', 'CO'), then cut
to its first 12 characters ('ONE ONE THREE SEAFOOD RESTAURANT' and '... SDN BHD' agree). Two
receipts are one shop when their shop keys agree *or* their folded address keys are equal
(a typo in one company key, 'RSTORAN' for 'RESTORAN', still lands with its shop); shops are
the connected groups of that relation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from models.evaluation.scoring import fold_text

#: Characters of the folded, stripped company key that name the shop.
SHOP_KEY_CHARS = 12

_BRACKETS = re.compile(r"\([^)]*\)?|\[[^\]]*\]?")
_LEGAL_TEXT = "SDN BHD BND BHO S/B SB S B BERHAD CO COMPANY LTD LIMITED PTE PLC INC LLC M THE"
_LEGAL_WORDS = frozenset(_LEGAL_TEXT.split())


def shop_key(company: str) -> str:
    """The company key folded for grouping receipts of one shop (see the module doc)."""
    text = _BRACKETS.sub(" ", company.upper())
    words = [w for w in re.split(r"[\s.,&]+", text) if w]
    kept = [w for w in words if w not in _LEGAL_WORDS and fold_text(w) not in _LEGAL_WORDS]
    return fold_text(" ".join(kept or words))[:SHOP_KEY_CHARS]


def shop_groups(keys: Sequence[Mapping[str, str]]) -> list[int]:
    """For each receipt's answer key, the index of its shop (shops numbered by first receipt).

    Receipts are one shop when their `shop_key`s agree or their folded addresses are equal
    (empty keys link nothing).
    """
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        for kind, value in (
            ("company", shop_key(key.get("company", ""))),
            ("address", fold_text(key.get("address", ""))),
        ):
            if not value:
                continue
            j = first.setdefault((kind, value), i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(i), len(numbers)) for i in range(len(keys))]


def grouped_folds(groups: Sequence[int], folds: int) -> list[int]:
    """A fold for each receipt such that no shop (`groups` entry) spans two folds.

    Deterministic: shops are taken largest first (ties by shop number) and each goes to the
    fold that holds the fewest receipts so far (ties to the lowest fold), which balances the
    folds. Raises ValueError when there are fewer shops than folds.
    """
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    if len(members) < folds:
        raise ValueError(
            f"{len(members)} shops cannot fill {folds} shop-grouped folds; use fewer folds"
        )
    sizes = [0] * folds
    out = [0] * len(groups)
    for g in sorted(members, key=lambda g: (-len(members[g]), g)):
        k = min(range(folds), key=lambda k: (sizes[k], k))
        sizes[k] += len(members[g])
        for i in members[g]:
            out[i] = k
    return out


def round_robin_folds(n: int, folds: int) -> list[int]:
    """Receipt `i` (in sorted id order) in fold `i % folds`: shops may span folds."""
    return [i % folds for i in range(n)]


def singletons(groups: Sequence[int]) -> list[bool]:
    """For each receipt, whether it is the only receipt of its shop."""
    counts: dict[int, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    return [counts[g] == 1 for g in groups]
