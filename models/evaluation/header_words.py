"""The train-derived lexicon of `models.extraction.wordfix`: words shared by shops.

Two lists, both from the SROIE *train* split only, both keeping a word only when it occurs at
`MIN_SHOPS` or more shops (`shops.shop_groups`), so nothing particular to one shop is learnt:

- `words`, the words to repair towards: the words of the keys' company and address fields
  (street words, towns, states, legal forms: 'JALAN', 'SHAH', 'ALAM', 'SDN');
- `known`, real words that are never repaired although they are one letter from a header
  word: every word of the receipts' transcripts ('BEST' next to 'BESI', 'KEDAI' next to
  'KEDAH', 'GOODS' next to 'FOODS').

Rebuilt by `receipts eval header-words`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from models.evaluation.shops import shop_groups

#: A word must occur at this many shops to enter a list.
MIN_SHOPS = 2
_WORD = re.compile(r"[A-Z]+")


def _shared(texts: Iterable[str], shops: Sequence[int], min_shops: int) -> list[str]:
    seen: dict[str, set[int]] = {}
    for text, shop in zip(texts, shops, strict=True):
        for word in _WORD.findall(text.upper()):
            if len(word) >= 2:
                seen.setdefault(word, set()).add(shop)
    return sorted(w for w, s in seen.items() if len(s) >= min_shops)


def header_words(keys: Sequence[Mapping[str, str]], min_shops: int = MIN_SHOPS) -> list[str]:
    """Letter-only words (two letters or more, upper case) of the keys' company and address
    fields that occur at `min_shops` shops or more, sorted."""
    texts = [f"{k.get('company', '')} {k.get('address', '')}" for k in keys]
    return _shared(texts, shop_groups(keys), min_shops)


def known_words(
    keys: Sequence[Mapping[str, str]], transcripts: Sequence[str], min_shops: int = MIN_SHOPS
) -> list[str]:
    """Letter-only words of the receipts' transcripts (one text per receipt, in the order of
    `keys`) that occur at `min_shops` shops or more, sorted."""
    return _shared(transcripts, shop_groups(keys), min_shops)


def to_json(
    words: Sequence[str], known: Sequence[str], source: str, min_shops: int = MIN_SHOPS
) -> str:
    """The lexicon file: where it came from, the threshold and both lists."""
    body = {"source": source, "min_shops": min_shops, "words": list(words), "known": list(known)}
    return json.dumps(body, indent=0) + "\n"
