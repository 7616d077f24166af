"""Words that label the amounts on a receipt, in the common Latin-alphabet languages."""

from __future__ import annotations

import functools
import re
from enum import StrEnum

from models.extraction.normalize import fold


class Label(StrEnum):
    TOTAL = "total"
    SUBTOTAL = "subtotal"
    TAX = "tax"
    TIP = "tip"
    DISCOUNT = "discount"
    ROUNDING = "rounding"
    TENDERED = "tendered"
    CHANGE = "change"
    IGNORE = "ignore"


def _words(*phrases: str) -> re.Pattern[str]:
    """A pattern matching any phrase as whole words in folded text (spaces are flexible)."""
    alts = "|".join(r"\s*".join(re.escape(w) for w in p.split()) for p in phrases)
    return re.compile(rf"(?<![A-Z0-9])(?:{alts})(?![A-Z])")


# Order matters: the first label whose pattern matches wins (specific before generic).
_PATTERNS: list[tuple[Label, float, re.Pattern[str]]] = [
    (
        Label.IGNORE,
        1.0,
        _words(
            "TOTAL QTY",
            "TOTAL QUANTITY",
            "TOTAL ITEM",
            "TOTAL ITEMS",
            "ITEM S",
            "QTY S",
            "TOTAL NO",
            "TOTAL SAVING",
            "TOTAL SAVINGS",
            "YOU SAVED",
            "POINTS",
            "TOTAL POINT",
            "BALANCE POINT",
            "TOTAL DISC",
            "TOTAL DISCOUNT",
            "NO OF ITEMS",
            "ITEM COUNT",
            "ANZAHL",
            "NOMBRE D ARTICLES",
            "GST SUMMARY",
            "TAX SUMMARY",
            "VAT SUMMARY",
        ),
    ),
    (Label.TOTAL, 1.0, _words("PAID INCL", "PAID INCLUSIVE", "PAID INCLUDING")),
    (Label.SUBTOTAL, 1.0, _words("PAID EXCL", "PAID EXCLUSIVE", "PAID EXCLUDING")),
    (
        # Payment phrases that contain a total word ('PAID AMOUNT', 'CASH RECEIVED').
        Label.TENDERED,
        1.0,
        _words(
            "PAID AMOUNT",
            "AMOUNT PAID",
            "AMT PAID",
            "AMOUNT TENDERED",
            "AMT TENDERED",
            "CASH TENDERED",
            "CASH RECEIVED",
            "TOTAL TENDERED",
            "PAYMENT RECEIVED",
        ),
    ),
    (
        Label.TOTAL,
        1.2,
        _words(
            "GRAND TOTAL",
            "TOTAL DUE",
            "AMOUNT DUE",
            "BALANCE DUE",
            "TOTAL PAYABLE",
            "AMOUNT PAYABLE",
            "A PAYER",
            "ZU ZAHLEN",
            "TE BETALEN",
            "A PAGAR",
            "JUMLAH BESAR",
            "GRANDTOTAL",
            "TOTAL ROUNDED",
            "ROUNDED TOTAL",
            "ROUND D TOTAL",
            "AFTER ROUNDING",
            "NET AMOUNT DUE",
            "JUMLAH KESELURUHAN",
            "ATT BETALA",
            "TOTAL A PAGAR",
            "AFTER ADJ",
            "AMT PAYABLE",
            "NET PAYABLE",
            "AMOUNT TO BE PAID",
            "TO BE PAID",
            "TOTAL TO PAY",
            "A REGLER",
            "DO ZAPLATY",
            "FIZETENDO",
            "VEGOSSZEG",
            "K UHRADE",
            "CELKEM K UHRADE",
            "AT BETALE",
            "GENEL TOPLAM",
            "ODENECEK TUTAR",
        ),
    ),
    (
        Label.TOTAL,
        1.0,
        _words(
            "TOTAL INCL",
            "TOTAL INCLUSIVE",
            "TOTAL INC",
            "INCL GST",
            "INCL TAX",
            "INCL VAT",
            "INCLUSIVE GST",
            "INCLUSIVE OF GST",
            "INC GST",
            "TOTAL GST INCL",
            "TOTAL VAT INCL",
            "TOTAL TAX INCL",
            "TOTAL INKL",
            "TOTAL IVA INCL",
            "TOTAL TVA INCL",
            "TOTAL SALES INCLUSIVE",
            "NETT TOTAL",
            "NET TOTAL",
            "TOTAL ROUNDED",
            "ROUNDED TOTAL",
            "ROUND D TOTAL",
            "TOTAL AFTER",
            "TOTAL TTC",
            "NET TTC",
            "A PAYER",
            "ZU ZAHLEN",
            "TE BETALEN",
            "A PAGAR",
            "JUMLAH BESAR",
            "JUMLAH KESELURUHAN",
            "GRANDTOTAL",
            "TOTAL A PAGAR",
            "ATT BETALA",
            "INCLUSIVE OF GST",
            "INCL OF GST",
            "INCLUSIVE GST",
            "TOTAL INCLUSIVE OF",
            "AFTER ADJ",
            "AFTER ROUNDING",
            "NETT AMOUNT",
            "NET AMOUNT DUE",
            "TOTAL AFTER DISC",
            "AMOUNT DUE",
            "TOTAL INCLUDE",
            "TOTAL INCLUDES",
            "TOTAL INCLUDING",
            "INCLUDING GST",
            "INCLUDE GST",
            "INCLUDING TAX",
            "INCLUDING VAT",
            "TOTAL INCLUSIVE GST",
        ),
    ),
    (
        Label.ROUNDING,
        1.0,
        _words(
            "ROUNDING",
            "ROUND ADJ",
            "ROUNDING ADJ",
            "ROUNDING ADJUSTMENT",
            "ROUNDED ADJ",
            "RUNDUNG",
            "ARRONDI",
            "REDONDEO",
            "ARROTONDAMENTO",
            "AFRONDING",
            "ADJ",
            "ADJUSTMENT",
            "PELARASAN",
            "ROUND OFF",
            "ROUNDOFF",
            "RND ADJ",
            "ROUNDIN",
            "ROUNDNG",
        ),
    ),
    (
        Label.SUBTOTAL,
        1.0,
        _words(
            "SUBTOTAL",
            "SUB TOTAL",
            "SUB TTL",
            "SUBTTL",
            "ZWISCHENSUMME",
            "SOUS TOTAL",
            "SUBTOTALE",
            "SUBTOTAAL",
            "TUSSENTOTAAL",
            "TOTAL EXCL",
            "TOTAL EXCLUDING",
            "EXCL GST",
            "EXCL TAX",
            "EXCL VAT",
            "NETTO",
            "TOTAL HT",
            "MONTANT HT",
            "BASE IMPONIBLE",
            "IMPONIBILE",
            "TOTAL SALES EXCLUDING",
            "AMOUNT EXCL",
            "SALES EXCL",
            "TOTAL BEFORE TAX",
            "JUMLAH KECIL",
            "TAXABLE AMOUNT",
            "TAXABLE AMT",
            "TAXABLE",
            "AMOUNT BEFORE TAX",
            "AMT EXCL",
            "DELSUMMA",
            "RESZOSSZEG",
            "SUMA CZESCIOWA",
            "MEZISOUCET",
            "MELLEMSUM",
            "ARA TOPLAM",
        ),
    ),
    (
        Label.TIP,
        1.0,
        _words(
            "TIP",
            "TIPS",
            "GRATUITY",
            "TRINKGELD",
            "POURBOIRE",
            "PROPINA",
            "MANCIA",
            "FOOI",
            "SERVICE CHARGE",
            "SERVICE CHG",
            "SVC CHG",
            "SVC CHARGE",
            "SERVICE CHRG",
            "SERVIS",
            "SERVICE 10%",
            "S CHARGE",
            "SC 10%",
            "SERV CHARGE",
            "SERV CHG",
            "SRV CHG",
            "SERV CHRG",
            "SVC",
            "SERVICE CHARGES",
            "SERVICE FEE",
            "BEDIENUNG",
        ),
    ),
    (
        Label.CHANGE,
        1.0,
        _words(
            "CHANGE",
            "CHANGE DUE",
            "CHG",
            "RUCKGELD",
            "WECHSELGELD",
            "RENDU",
            "MONNAIE",
            "CAMBIO",
            "VUELTO",
            "VUELTA",
            "RESTO",
            "WISSELGELD",
            "TROCO",
            "BAKI",
            "VAXEL",
            "TILLBAKA",
            "VISSZAJARO",
            "ZURUCK",
            "DEVOLUCION",
            "TERUG",
            "RESZTA",
            "RETOUR",
            "VRACENO",
            "BYTTEPENGE",
            "RETUR",
            "PARA USTU",
        ),
    ),
    (
        Label.DISCOUNT,
        1.0,
        _words(
            "DISCOUNT",
            "DISC",
            "RABATT",
            "REMISE",
            "DESCUENTO",
            "SCONTO",
            "KORTING",
            "SAVINGS",
            "PROMO",
            "COUPON",
            "DISKAUN",
            "REDUCTION",
            "NACHLASS",
            "DESCONTO",
            "LESS",
        ),
    ),
    (
        Label.TAX,
        1.0,
        _words(
            "TAX",
            "GST",
            "VAT",
            "SST",
            "HST",
            "PST",
            "QST",
            "MWST",
            "MWST.",
            "UST",
            "TVA",
            "IVA",
            "BTW",
            "MOMS",
            "AFA",
            "ALV",
            "CUKAI",
            "SALES TAX",
            "SERVICE TAX",
            "IMPUESTO",
            "IMPOSTA",
            "STEUER",
            "MEHRWERTSTEUER",
            "TPS",
            "TVQ",
            "DPH",
            "KDV",
        ),
    ),
    (
        Label.TOTAL,
        0.8,
        _words(
            "TOTAL AMOUNT",
            "TOTAL AMT",
            "TOTAL RM",
            "TOTAL MYR",
            "SUMME",
            "GESAMT",
            "GESAMTBETRAG",
            "BETRAG",
            "TOTALE",
            "IMPORTO",
            "TOTAAL",
            "IMPORTE",
            "SUMA",
            "RAZEM",
            "YHTEENSA",
            "I ALT",
            "TOTALT",
            "SUMMA",
            "CELKEM",
            "OSSZESEN",
            "TOPLAM",
            "JUMLAH",
            "TOTAL",
            "TTL",
            "TOTAL SALE",
            "AMOUNT",
            "AMT",
            "BALANCE",
            "NETT",
            "TOTAL PAID",
            "TOTAI",
            "T0TAL",
            "TOTA L",
        ),
    ),
    (
        Label.TENDERED,
        1.0,
        _words(
            "CASH",
            "TENDERED",
            "TENDER",
            "AMOUNT TENDERED",
            "CASH TENDERED",
            "PAID",
            "PAYMENT",
            "AMOUNT PAID",
            "BAR",
            "GEGEBEN",
            "ESPECES",
            "EFECTIVO",
            "CONTANTI",
            "CONTANT",
            "TUNAI",
            "KONTANT",
            "CONTANTE",
            "ENTREGADO",
            "GOTOWKA",
            "KESZPENZ",
            "HOTOVE",
            "HOTOVOST",
            "NUMERARIO",
            "NAKIT",
            "DINHEIRO",
            "RECEIVED",
            "CUSTOMER PAID",
            "VISA",
            "MASTER",
            "MASTERCARD",
            "AMEX",
            "CREDIT CARD",
            "DEBIT CARD",
            "CARD",
            "KARTE",
            "BANKKARTYA",
            "DANKORT",
            "MULTIBANCO",
            "KREDI KARTI",
            "BANKA KARTI",
            "PLATEBNI KARTA",
            "CARTE",
            "TARJETA",
            "EC KARTE",
        ),
    ),
]


# 'TOTAL SALES (INCLUSLVE OF GST)': a total that mentions the tax, not the tax itself.
_TOTAL_WITH_TAX = re.compile(
    r" TOTAL (?!GST|TAX|VAT|TVA|MWST|IVA|BTW|INCLUDED|INCLUDES|INCLUDING|INCL)"
    r"[A-Z]+ .*(?:GST|TAX|VAT|TVA|IVA)"
)


def _vocabulary() -> dict[str, frozenset[str]]:
    """Keyword words of five letters or more, indexed by themselves and every one-letter
    deletion of them (a symmetric-deletion index: one lookup finds every word one edit away)."""
    words = {
        w
        for _, _, pattern in _PATTERNS
        for w in re.findall(r"[A-Z]{5,}", pattern.pattern.replace(r"\s*", " "))
    }
    index: dict[str, set[str]] = {}
    for w in words:
        for key in {w, *(w[:i] + w[i + 1 :] for i in range(len(w)))}:
            index.setdefault(key, set()).add(w)
    return {k: frozenset(v) for k, v in index.items()}


_INDEX = _vocabulary()
_KNOWN = frozenset(w for words in _INDEX.values() for w in words)
_TOKEN = re.compile(r"[A-Z0-9]{5,}")


def _near_keyword(match: re.Match[str]) -> str:
    """The keyword one OCR edit away from the token ('TENOER' -> 'TENDER'), if exactly one."""
    token = match.group(0)
    if token in _KNOWN or sum(c.isdigit() for c in token) > 1:
        return token
    found: set[str] = set()
    for key in {token, *(token[:i] + token[i + 1 :] for i in range(len(token)))}:
        found |= _INDEX.get(key, frozenset())
    return next(iter(found)) if len(found) == 1 else token


def correct_keywords(folded: str) -> str:
    """Folded text with OCR-damaged keywords repaired (one edit, unambiguous, 5+ letters)."""
    return _TOKEN.sub(_near_keyword, folded)


@functools.lru_cache(maxsize=8192)
def label_of(text: str) -> tuple[Label, float] | None:
    """The amount label the text carries, with its strength, or None when it names none.

    Keywords damaged by OCR by one letter ('TENOER', 'SUBT0TAL', 'R0UNDING') still count.
    """
    folded = correct_keywords(fold(text))
    for label, strength, pattern in _PATTERNS:
        if pattern.search(folded):
            if label is Label.TAX and _TOTAL_WITH_TAX.search(folded):
                return Label.TOTAL, 0.9
            return label, strength
    return None
