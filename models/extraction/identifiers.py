"""Phone, tax registration, receipt number, payment method and card (last four digits only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.extraction.layout import Page
from models.extraction.normalize import fold, strip_accents

_PHONE = re.compile(
    r"(?:TEL|TELEPHONE|PHONE|PH|HP|T|MOBILE|TELEFON|TEL NO|CONTACT)\s*(?:NO)?\.?\s*[:.]?\s*"
    r"(\+?[\d()][\d\s()\-./]{6,18}\d)",
    re.IGNORECASE,
)
# Labels start a word ('EIN', not the end of 'PROTEIN'; 'DIC', not the middle of 'MEDICAL').
_TAX_ID = re.compile(
    r"(?<![A-Z])(?P<label>GST\s*(?:REG(?:ISTRATION)?|ID)?\s*(?:NO|NUMBER)?|"
    r"VAT\s*(?:REG(?:ISTRATION)?)?\s*(?:NO|NUMBER)?|ABN|ROC|CO\.?\s*REG\.?\s*(?:NO)?|"
    r"COMPANY\s*(?:REG\.?)?\s*NO|SST\s*(?:REG)?\s*(?:NO)?|UST-?ID(?:NR)?|STEUER-?NR|"
    r"TVA\s*INTRA|N°\s*TVA|SIRET|NIF|CIF|P\.?\s*IVA|BTW\s*(?:NR)?|"
    r"TAX\s*ID|EIN|ADOSZAM|DIC|VKN|CVR|VERGI\s*NO)\.?\s*[:.#]?\s*"
    r"(?P<value>[A-Z]{0,3}[\s-]?[\dA-Z][\dA-Z\s\-/.]{3,22}[\dA-Z])",
    re.IGNORECASE,
)
_RECEIPT_NO = re.compile(
    r"(?<![A-Z])(?:RECEIPT|INVOICE|INV|BILL|DOC(?:UMENT)?|TRANS(?:ACTION)?|CHECK|CHK|ORDER|"
    r"RECHNUNG|BELEG|BON|FACTURE|TICKET|FACTURA|RESIT|SLIP|REF|NYUGTA(?:SZAM)?|"
    r"SZAMLA(?:SZAM)?|KVITTERING|KVITTO|UCTENKA|DOKLAD\s*C|"
    r"FATURA(?:\s*SIMPLIFICADA|-RECIBO)?|FIS(?![A-Z])|PARAGON)"
    r"\s*(?:NO|NUMBER|NUM|NR|#|N°)?\.?\s*[:#.]?\s*"
    r"(?P<value>[A-Z]{0,4}[-#]?\d[\dA-Z\-/]{2,24})",
    re.IGNORECASE,
)
_CARD_BRANDS = {
    "VISA": "Visa",
    "MASTERCARD": "Mastercard",
    "MASTER CARD": "Mastercard",
    "MASTER": "Mastercard",
    "MC": "Mastercard",
    "AMEX": "American Express",
    "AMERICAN EXPRESS": "American Express",
    "DISCOVER": "Discover",
    "JCB": "JCB",
    "UNIONPAY": "UnionPay",
    "UNION PAY": "UnionPay",
    "MAESTRO": "Maestro",
    "DINERS": "Diners Club",
    "GIROCARD": "girocard",
    "EC KARTE": "girocard",
    "INTERAC": "Interac",
    "EFTPOS": "EFTPOS",
    "MYDEBIT": "MyDebit",
    "CB": "CB",
}
_CARD_NUMBER = re.compile(r"(?:[X*#•]{2,}[\sX*#•-]*|\d{4}[\s-]?\d{2}[X*#•]{2}[\sX*#•-]*)(\d{4})\b")
_PAY_WORDS: list[tuple[str, str]] = [
    (
        "card",
        r"CREDIT CARD|DEBIT CARD|CARD|VISA|MASTER|AMEX|KARTE|CARTE|TARJETA|EFTPOS|MYDEBIT|"
        r"GIROCARD|CONTACTLESS|CHIP|DEBIT|CREDIT",
    ),
    (
        "mobile",
        r"APPLE PAY|GOOGLE PAY|GRABPAY|BOOST|TOUCH N GO|TNG|E WALLET|EWALLET|PAYPAL|ALIPAY|"
        r"WECHAT PAY",
    ),
    ("cash", r"CASH|TUNAI|BAR|ESPECES|EFECTIVO|CONTANTI|CONTANT|KONTANT|DINHEIRO"),
]


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    lines: list[int]
    confidence: float


def find_phone(page: Page) -> Found | None:
    for line in page.lines:
        m = _PHONE.search(line.text)
        if m:
            digits = re.sub(r"\D", "", m.group(1))
            if 7 <= len(digits) <= 15:
                return Found(m.group(1).strip(), [line.id], 0.85)
    return None


def find_tax_id(page: Page) -> Found | None:
    for line in page.lines:
        m = _TAX_ID.search(strip_accents(line.text))
        if m and sum(c.isdigit() for c in m.group("value")) >= 5:
            return Found(m.group("value").strip(" .-"), [line.id], 0.8)
    return None


def find_receipt_number(page: Page) -> Found | None:
    for line in page.lines:
        m = _RECEIPT_NO.search(strip_accents(line.text))
        if m:
            return Found(m.group("value").strip(" .-"), [line.id], 0.7)
    return None


def find_card(page: Page) -> tuple[Found | None, Found | None]:
    """(card brand, last four digits). Never returns more of a card number than four digits."""
    brand: Found | None = None
    last4: Found | None = None
    for line in page.lines:
        folded = fold(line.text)
        if brand is None:
            for key, name in _CARD_BRANDS.items():
                if f" {key} " in folded and (len(key) > 2 or "CARD" in folded):
                    brand = Found(name, [line.id], 0.8)
                    break
        if last4 is None:
            m = _CARD_NUMBER.search(line.text.upper())
            if m:
                last4 = Found(m.group(1)[-4:], [line.id], 0.85)
    return brand, last4


def find_payment_method(page: Page, start_order: int) -> Found | None:
    """'card', 'cash' or 'mobile', from the lines below the total."""
    for method, words in _PAY_WORDS:
        pattern = re.compile(rf" (?:{words}) ")
        for line in page.lines:
            if line.order >= start_order and pattern.search(fold(line.text)):
                return Found(method, [line.id], 0.75)
    return None
