"""Repair OCR-damaged words of names and addresses against a lexicon of common receipt words.

OCR misreads one letter of a long word far more often than it invents a new word:
'KWANSAN PERINOUSTRIAN' was 'KAWASAN PERINDUSTRIAN', 'ENTERORISE' was 'ENTERPRISE'. A word of
six letters or more that is not in the lexicon but is exactly one edit (substitution,
insertion, deletion) from one lexicon word, and from no other, is replaced by it, keeping the
case style of the original. The lexicon holds generic words only: company forms and trades,
street and building words, regions and countries in the languages the extractor reads; never
the names of particular shops. Lookups use a symmetric-deletion index, so a word costs a
handful of dictionary probes.
"""

from __future__ import annotations

import functools
import re

#: Generic words of receipt headers (upper case, six letters or more to be useful). Real words
#: one edit from another entry ('BORONG' / 'LORONG', 'STATIONER') are listed so they stay.
_WORDS_TEXT = """
    ENTERPRISE ENTERPRISES TRADING HARDWARE STATIONERY SUPERMARKET HYPERMARKET PHARMACY
    FARMASI RESTORAN RESTAURANT RESTAURANTS MARKETING INDUSTRIES INDUSTRIAL INDUSTRY SERVICES
    SERVICE HOLDINGS CORPORATION COMPANY LIMITED BERHAD TRADERS TRADER PERNIAGAAN SYARIKAT
    BAKERY BAKERIES KOPITIAM MINIMARKET ELECTRICAL ELECTRONICS FURNITURE MACHINERY ENGINEERING
    CONSTRUCTION SUPPLIES SUPPLY DISTRIBUTOR DISTRIBUTORS INTERNATIONAL MANAGEMENT RETAIL
    STORES MEDICAL HEALTHCARE BOOKSTORE CATERING FOODS BEVERAGES GENERAL MERCHANT MERCHANDISE
    AUTOMOTIVE MOTOR MOTORS SPARE PARTS PETROLEUM STATION TRANSPORT LOGISTICS
    JALAN LORONG PERSIARAN KAWASAN PERINDUSTRIAN SEKSYEN SECTION BANDAR KAMPUNG TAMAN
    BANGUNAN WISMA MENARA KOMPLEKS LEBUHRAYA PUSAT DAGANGAN PERDAGANGAN PERUMAHAN
    BUILDING CENTRE CENTER COMPLEX ESTATE SQUARE GROUND BASEMENT FLOOR LEVEL SUITE
    STREET AVENUE BOULEVARD HIGHWAY TERRACE CRESCENT PARKWAY
    SELANGOR KUALA LUMPUR JOHOR BAHRU PENANG PINANG PERAK PAHANG KEDAH KELANTAN TERENGGANU
    MELAKA MALACCA NEGERI SEMBILAN PERLIS SABAH SARAWAK PUTRAJAYA LABUAN DARUL EHSAN TAKZIM
    MAKMUR RIDZUAN KHUSUS WILAYAH PERSEKUTUAN MALAYSIA SINGAPORE INDONESIA THAILAND
    PHILIPPINES AUSTRALIA ZEALAND CANADA KINGDOM ENGLAND SCOTLAND IRELAND GERMANY DEUTSCHLAND
    FRANCE ITALIA NETHERLANDS NEDERLAND BELGIUM BELGIQUE SCHWEIZ SUISSE OSTERREICH AUSTRIA
    PORTUGAL SWEDEN SVERIGE NORWAY DENMARK DANMARK POLSKA LONDON BERLIN MADRID MILANO
    AMSTERDAM STRASSE CHEMIN CALLE AVENIDA CARRERA CAMINO PIAZZA
    BORONG RUNCIT BARANGAN MAKANAN MINUMAN STATIONER COMPLEKS KOMPLEK TRADE TRADES
    SUPERMARKT SUPERMERCADO SUPERMERCATO SUPERMARCHE BAKKERIJ BACKEREI BAECKEREI
    BOULANGERIE PATISSERIE BOUCHERIE METZGEREI SLAGERIJ APOTHEKE APOTEEK APOTEK PHARMACIE
    FARMACIA RISTORANTE RESTAURANTE TRATTORIA CAFETERIA MARKET MARKT MARCHE MERCADO MERCATO
    SKLEP GROCERY GROCERIES DELICATESSEN LIVSMEDEL BUTIKEN KAUFHAUS DROGERIE TABACCHERIA
"""
WORDS = frozenset(_WORDS_TEXT.split())
_LONG = 6
_WORD = re.compile(r"[A-Za-z]{6,}")


def _index(words: frozenset[str]) -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for w in words:
        if len(w) < _LONG:
            continue
        for key in {w, *(w[:i] + w[i + 1 :] for i in range(len(w)))}:
            index.setdefault(key, set()).add(w)
    return {k: frozenset(v) for k, v in index.items()}


_INDEX = _index(WORDS)


def nearest(word: str) -> str | None:
    """The lexicon word one edit from `word` (upper case), if exactly one; None otherwise."""
    upper = word.upper()
    if upper in WORDS or len(upper) < _LONG:
        return None
    found: set[str] = set()
    for key in {upper, *(upper[:i] + upper[i + 1 :] for i in range(len(upper)))}:
        found |= _INDEX.get(key, frozenset())
    # A word that only adds or drops an ending of a lexicon word is another real word
    # ('GROCER' / 'GROCERY', 'STATIONER' / 'STATIONERY'): leave it.
    close = [
        w for w in found if _one_edit(upper, w) and not (w.startswith(upper) or upper.startswith(w))
    ]
    return close[0] if len(close) == 1 else None


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by exactly one substitution, insertion or deletion."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if abs(len(a) - len(b)) != 1:
        return False
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _restyle(word: str, original: str) -> str:
    if original.isupper():
        return word
    if original.islower():
        return word.lower()
    return word.capitalize()


def _repair(match: re.Match[str]) -> str:
    original = match.group(0)
    word = nearest(original)
    return original if word is None else _restyle(word, original)


@functools.lru_cache(maxsize=4096)
def repair_words(text: str) -> str:
    """The text with one-edit OCR damage to lexicon words undone ('KWANSAN' -> 'KAWASAN')."""
    return _WORD.sub(_repair, text)
