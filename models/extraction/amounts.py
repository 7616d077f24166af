"""Money amounts in text: decimal commas, thousands separators, signs and currency marks."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from models.extraction.normalize import fix_digits, strip_accents

# Currency marks as printed, to their ISO 4217 code. "$" alone is resolved by other evidence.
_SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₱": "PHP",
    "฿": "THB",
    "S$": "SGD",
    "A$": "AUD",
    "C$": "CAD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "US$": "USD",
    "RM": "MYR",
    "RP": "IDR",
    "FR.": "CHF",
    "ZŁ": "PLN",
    "KČ": "CZK",
    "FT": "HUF",
    "RS.": "INR",
    "R$": "BRL",
    "₺": "TRY",
    "₫": "VND",
    "LEI": "RON",
    "TL": "TRY",
    "$": "USD",
}
_CODES = {
    "USD",
    "EUR",
    "GBP",
    "MYR",
    "SGD",
    "AUD",
    "CAD",
    "NZD",
    "HKD",
    "JPY",
    "CNY",
    "INR",
    "IDR",
    "THB",
    "PHP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "RON",
    "TRY",
    "ZAR",
    "BRL",
    "MXN",
    "KRW",
    "VND",
    "CLP",
    "ISK",
    "TWD",
}
#: Currencies printed without a minor unit: '¥4,680', 'Rp 25.000', '1 250 Ft'. On a receipt in
#: one of them an amount needs no cents, and '12,000' or '25.000' is twelve or twenty-five
#: thousand, never twelve or twenty-five.
WHOLE_UNIT_CURRENCIES = frozenset({"JPY", "KRW", "VND", "IDR", "HUF", "CLP", "ISK", "TWD"})
# Currency codes stand alone ('EUR 12,50', not the 'EUR' of 'EUROPA'); RM may be glued to a
# word that OCR ran into it ('TARM21.85': see _GLUED_MARK).
_ISO = "|".join(sorted(_CODES))
_MARKS = r"NZ\$|HK\$|US\$|S\$|A\$|C\$|R\$|RM|RS\.|FR\.|[€£¥₹₩₱฿₺₫$]"
_CUR = rf"(?:{_MARKS}|(?<![A-Z])(?:{_ISO})(?![A-Z]))"
# Short letter marks printed after the amount only ('12,50 kr', '33,76 zł', '1 250 Ft',
# '45,90 TL'): before a number they are letters of a code ('CASHIER:FT8303'). 'kr' marks money
# but names no one currency (Swedish, Norwegian or Danish): `detect_currency` asks the
# receipt's country words which, as it does for a '$'.
_CUR_AFTER = r"(?:KR|ZŁ|KČ|FT|LEI|TL)(?![A-Z])"
_NUMBER = r"\d{1,3}(?:[,.']\d{3})+(?:[.,]\d{1,3})?|\d+(?:[.,]\d{1,3})?|[.,]\d{2}"
# Marks vote in any case; an ISO code in any case beside a number ('32 900 huf'), elsewhere as
# printed, in capitals and not as an abbreviation ('Cumhuriyet Cad.' is a street, 'TOTAL CAD'
# Canadian dollars): three letters are matched, then looked up (faster than an alternation of
# every code).
# A letter of any script ends a code: 'NOK' of 'KÖSZÖNOK' is no krone.
_CURRENCY_VOTE = re.compile(
    rf"(?i:(?<![^\W\d_])(?P<mark>{_MARKS})(?![^\W\d_])"
    rf"|(?<=\d)\s?(?P<after>{_CUR_AFTER}|[A-Z]{{3}})(?![^\W\d_])"
    r"|(?<![^\W\d_])(?P<before>[A-Z]{3})\s?(?=\d))"
    r"|(?<![^\W\d_])(?P<code>[A-Z]{3})(?![^\W\d_]|\.)"
)
# What a '$' or a 'kr' stands for, from the country a receipt's words name: its tax number,
# tax words, states and postcodes. The first that matches decides; '$' is USD otherwise.
_DOLLAR_COUNTRIES = (
    ("AUD", re.compile(r"\bABN\b|\b(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT)\s+\d{4}\b|AUSTRALIA")),
    ("NZD", re.compile(r"\bNZ\b|NEW ZEALAND|\bIRD\b")),
    ("CAD", re.compile(r"\b(?:HST|PST|QST|TPS|TVQ)\b|\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b|CANADA")),
    ("SGD", re.compile(r"SINGAPORE|\bUEN\b")),
    ("HKD", re.compile(r"HONG KONG")),
)
_KRONA_COUNTRIES = (
    ("DKK", re.compile(r"\bCVR\b|DANKORT|\bI ALT\b|DANMARK|DENMARK|\bAT BETALE\b")),
    ("NOK", re.compile(r"\bMVA\b|NORGE|NORWAY|\bA BETALE\b")),
    ("SEK", re.compile(r"\bMOMS\b|SVERIGE|SWEDEN|\bORG\s?NR\b|KVITTO|ATT BETALA")),
)
# Countries whose currency has no minor unit, by words a receipt from there prints whatever
# its amounts are marked with: phone country code, tax number and tax words, big cities. A
# yen or forint receipt often prints no mark at all ('12 240' under 'FIZETENDŐ'), or the
# reading loses it, and then it is the country that says the amounts are whole units and not
# a '0,50' (litres of beer) or a misread '1 02€' the only money on it. Matched in the text
# without accents, upper case; the first that matches counts (`COUNTRY_VOTES`).
_WHOLE_UNIT_COUNTRIES: tuple[tuple[str, frozenset[str], str], ...] = (
    # (currency, whole words, other signs as a pattern)
    (
        "HUF",
        frozenset(
            {
                "ADOSZAM",
                "NYUGTA",
                "NYUGTASZAM",
                "FIZETENDO",
                "OSSZESEN",
                "AFA",
                "BANKKARTYA",
                "BUDAPEST",
                "MAGYARORSZAG",
            }
        ),
        r"\+36\b|\.HU\b",
    ),
    ("JPY", frozenset({"TOKYO", "OSAKA", "KYOTO", "JAPAN"}), r"\+81\b|\bT\d{13}\b|円"),
    ("KRW", frozenset({"SEOUL", "KOREA"}), r"\+82\b"),
    ("TWD", frozenset({"TAIPEI", "TAIWAN"}), r"\+886\b"),
    ("IDR", frozenset({"NPWP", "JAKARTA", "INDONESIA"}), r"\+62\b"),
    ("VND", frozenset({"HANOI", "VIETNAM"}), r"\+84\b|\bHA NOI\b|\bVIET NAM\b"),
    ("CLP", frozenset({"CHILE"}), r"\+56\b"),
    ("ISK", frozenset({"REYKJAVIK", "ICELAND"}), r"\+354\b"),
)
# Words are looked up in a set of the receipt's words, the other signs in one pass: a pattern
# per country over the whole text cost more than the rest of currency detection.
_COUNTRY_SIGNS = re.compile(
    "|".join(f"(?P<{code}>{signs})" for code, _, signs in _WHOLE_UNIT_COUNTRIES)
)
_FOLDED_WORD = re.compile(r"[A-Z]+")
#: The country's words count as this many marks of its currency: more than one stray symbol
#: read off a smudged digit, fewer than a receipt that marks its amounts in another currency.
COUNTRY_VOTES = 1.5
_AMOUNT = re.compile(
    rf"(?P<lead>[-(])?\s*(?P<cur1>{_CUR})?\s*(?P<sign>-)?\s*"
    rf"(?<![\d.,])(?P<num>{_NUMBER})(?![\d])(?![.,]\d)"
    rf"\s*(?P<cur2>{_CUR}|{_CUR_AFTER})?(?P<trail>-|\))?",
    re.IGNORECASE,
)
_QUANTITY_MARKS = frozenset("xX×@")
_TWO_DECIMALS = re.compile(r"(?<![\d.,])\d{1,3}(?:[,.]\d{3})*[.,]\d{2}(?![\d.,])")
_THOUSANDS_ONLY = re.compile(r"(?<![\d.,])\d{1,3}(?:[,.]\d{3})+(?![\d.,])")
#: How many thousands-grouped numbers, and none with cents, make a receipt one of whole units.
MIN_GROUPED = 2
_NBSP_GROUP = re.compile(r"(?<=\d)[\u00a0\u202f](?=\d{3}(?!\d))")
_SPACE_GROUPED = re.compile(r"(?<![\d.,'])\d{1,3}(?: \d{3})+,\d{2}(?!\d)")
_SPACE_WHOLE = re.compile(r"(?<![\d.,'])\d{1,3}(?: \d{3})+(?![\d.,])")
_BROKEN_DECIMAL = re.compile(r"(\d)\s*([.,])\s+(\d{2})(?!\d)|(\d)\s+([.,])(\d{2})(?!\d)")
_CENTS = re.compile(r"[.,]\d{2}$")
_DIGIT = re.compile(r"\d")
#: A currency mark misread and glued to a word before the number ('TARM21.85' for
#: 'TOTAL RM21.85', 'AM39.00' for 'RM39.00'): a short letter run ending in R/A/P/K + M or RN.
_GLUED_MARK = re.compile(r"(?:^|[^A-Za-z])([A-Za-z]{0,3}(?:[RAPK]M|RN))$")


@dataclass(frozen=True, slots=True)
class Amount:
    """One amount found in a line of text."""

    value: Decimal
    line_id: int
    start: int
    end: int
    has_cents: bool
    currency: str | None
    negative: bool


def _join_broken(text: str) -> str:
    """'12. 50' / '12 .50' -> '12.50': OCR often splits a number at its separator."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return f"{m.group(1)}{m.group(2)}{m.group(3)}"
        return f"{m.group(4)}{m.group(5)}{m.group(6)}"

    return _BROKEN_DECIMAL.sub(repl, text)


@functools.lru_cache(maxsize=8192)
def clean_amount_text(text: str) -> str:
    """The text with misread digits fixed and split numbers joined, ready for `find_amounts`."""
    return _join_broken(fix_digits(text))


def parse_number(
    num: str, decimal_comma: bool = False, whole_units: bool = False
) -> tuple[Decimal, bool] | None:
    """Parse '1,234.56', '1.234,56', '12,50', '9.000', "1'234.50"; returns (value, has two
    decimals). With `whole_units` (a currency without a minor unit) a single separator before
    three digits groups thousands: '12,000' and '25.000' are whole amounts."""
    if num[0] in ",.":
        num = "0" + num  # '.01' as printed by some tills
    seps = [c for c in num if c in ",.'"]
    if not seps:
        return Decimal(num), False
    last = max(num.rfind(","), num.rfind("."))
    tail = num[last + 1 :]
    sep = num[last]
    decimal_sep: str | None
    if last < 0:
        decimal_sep = None  # only "'" groups: "1'234"
    elif len(set(seps)) > 1:
        decimal_sep = sep
    elif len(seps) > 1:
        decimal_sep = None  # '1,234,567' or '1.234.567'
    elif len(tail) == 3:
        # '1,234' / '9.000': thousands unless the receipt writes decimals that way.
        decimal_sep = sep if (sep == "." and not decimal_comma and not whole_units) else None
    else:
        decimal_sep = sep
    if decimal_sep is None:
        digits = re.sub(r"[,.']", "", num)
        cents = False
    else:
        whole = re.sub(r"[,.']", "", num[:last])
        digits = f"{whole or '0'}.{tail}"
        cents = len(tail) == 2
    try:
        return Decimal(digits), cents
    except InvalidOperation:
        return None


def currency_code(mark: str | None) -> str | None:
    if mark is None:
        return None
    upper = mark.upper()
    if upper in _CODES:
        return upper
    return _SYMBOLS.get(upper)


def _grouped_by_spaces(text: str, decimal_comma: bool, whole_units: bool = False) -> str:
    """The text with spaces that group thousands written as "'" (same length, so positions
    stay): a no-break space always ('1\u00a0750,67'); a plain one before a decimal comma on a
    receipt that writes them ('1 750,67', French, Polish, Swedish), where a quantity before a
    price is written with its 'x'; and on a receipt of whole units a plain one between groups
    of three digits ('1 250 Ft', '10 860': Hungarian), where no decimals mark the end of a
    number."""
    text = _NBSP_GROUP.sub("'", text)
    if decimal_comma:
        text = _SPACE_GROUPED.sub(lambda m: m.group(0).replace(" ", "'"), text)
    if whole_units:
        text = _SPACE_WHOLE.sub(lambda m: m.group(0).replace(" ", "'"), text)
    return text


# What labels a number as a code, not money: a contact, approval or reference label or a
# masked card number right before it ('AUTH 938796', 'No: 3241', 'XXXX 2138'; not the 'No.'
# of an item named 'No.2 Ramen'), or a phone's '+' anywhere before it on the line.
_CODE_LABEL = re.compile(
    r"(?i)(?:(?<![^\W\d_])(?:TEL|FAX|PHONE|AUTH|APPR|APPROVAL|REF|TRACE|STAN|TID|MID|NO|NR|NUM)"
    r"|[X*]{4}|#)[\s.:#-]*$|\+\d"
)


def _whole_token(text: str, start: int, end: int) -> bool:
    """A bare number standing alone ('4,680', '-500', '780 *'), not a piece of a date, time,
    phone or code ('08:12', '2019/09/28', '03-5403-5664', 'No.1244') nor a quantity ('6 x').
    Seven digits or more in a row are a receipt or card number ('NYUGTA: 82846102'): prices
    that long are printed grouped ('1 250 000')."""
    if end - start >= 7 and text[start:end].isdigit():
        return False
    if _CODE_LABEL.search(text[:start]):
        return False  # 'AUTH 938796', 'TEL.: +36 1 841 2670', 'XXXX XXXX 2138', 'No: 3241'
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if before not in " (-" or after not in " )*":
        return False
    if text[end:].lstrip()[:1] in _QUANTITY_MARKS:
        return False  # '6 x 780': a quantity
    return not (before == "-" and start > 1 and text[start - 2].isalnum())


def find_amounts(
    text: str, line_id: int, decimal_comma: bool = False, whole_units: bool = False
) -> list[Amount]:
    """Every number in the text that can be money: it has cents or a currency mark or, on a
    receipt in a currency without a minor unit (`whole_units`), it stands alone as a number."""
    out: list[Amount] = []
    if not _DIGIT.search(text):
        return out
    text = _grouped_by_spaces(text, decimal_comma, whole_units)
    for m in _AMOUNT.finditer(text):
        parsed = parse_number(m.group("num"), decimal_comma, whole_units)
        if parsed is None:
            continue
        value, cents = parsed
        mark = m.group("cur1") or m.group("cur2")
        currency = currency_code(mark)
        standalone = whole_units and _whole_token(text, m.start("num"), m.end("num"))
        if not cents and mark is None and not standalone:
            continue
        if (
            m.group("num").count(",") + m.group("num").count(".") == 1
            and len(re.split(r"[.,]", m.group("num"))[-1]) == 3
            and mark is None
            and not decimal_comma
        ):
            cents = False
        negative = bool(m.group("sign")) or m.group("lead") == "-" or m.group("trail") == "-"
        negative = negative or (m.group("lead") == "(" and m.group("trail") == ")")
        # A number glued to letters (a product code, 'X2.50ML') is not an amount.
        start = m.start("cur1") if m.group("cur1") else m.start("num")
        end = m.end("cur2") if m.group("cur2") else m.end("num")
        before = text[start - 1] if start > 0 else " "
        after = text[end] if end < len(text) else " "
        if after.isalpha() or after == "%":
            continue
        if before.isalpha():
            glued = _GLUED_MARK.search(text[: m.start("num")])
            if glued is None or not cents:
                continue
            start = glued.start(1)
        out.append(
            Amount(
                value=-value if negative else value,
                line_id=line_id,
                start=start,
                end=end,
                has_cents=cents,
                currency=currency,
                negative=negative,
            )
        )
    return out


def guess_decimal_comma(texts: Iterable[str]) -> bool:
    """Whether the receipt writes decimals with a comma ('12,50'), judged by all its numbers."""
    comma = dot = 0
    for text in texts:
        for m in re.finditer(r"(?<![\d.,])\d{1,3}(?:[.,]\d{3})*([.,])\d{2}(?![\d.,])", text):
            if m.group(1) == ",":
                comma += 1
            else:
                dot += 1
    return comma > dot


def guess_whole_units(texts: Iterable[str], currency: str | None) -> bool:
    """Whether the receipt's amounts have no minor unit: its currency has none
    (`WHOLE_UNIT_CURRENCIES`), or, when it names none, no number on it has two decimals while
    several group thousands ('7,120', '24,440', '10 860': a yen or forint receipt without its
    mark)."""
    if currency is not None:
        return currency in WHOLE_UNIT_CURRENCIES
    grouped = 0
    for text in texts:
        if _TWO_DECIMALS.search(text):
            return False
        grouped += len(_THOUSANDS_ONLY.findall(text)) + len(_SPACE_WHOLE.findall(text))
    return grouped >= MIN_GROUPED


def detect_currency(texts: Iterable[tuple[int, str]]) -> tuple[str, list[int], float] | None:
    """The receipt's currency from marks and codes: (ISO code, line ids, share of the votes).
    A '$' or 'kr' is the dollar or krone of the country the receipt's words name; the words
    of a country whose currency has no minor unit vote for it (`_WHOLE_UNIT_COUNTRIES`)."""
    votes: dict[str, float] = {}
    where: dict[str, list[int]] = {}
    lines = list(texts)
    country: dict[str, str | None] = {}
    folded = strip_accents("\n".join(text for _, text in lines)).upper()

    def named(mark: str) -> str | None:
        """The dollar or krone of the country the receipt names (looked up once, if needed)."""
        if mark not in country:
            table = _DOLLAR_COUNTRIES if mark == "$" else _KRONA_COUNTRIES
            default = "USD" if mark == "$" else None
            country[mark] = next((c for c, words in table if words.search(folded)), default)
        return country[mark]

    for line_id, text in lines:
        for m in _CURRENCY_VOTE.finditer(text):
            mark = m.group("mark") or m.group("after") or m.group("before") or m.group("code")
            mark = mark.upper()
            code = named(mark) if mark in ("$", "KR") else currency_code(mark)
            if code is None:
                continue
            votes[code] = votes.get(code, 0.0) + 1
            where.setdefault(code, []).append(line_id)
    found = _whole_unit_country(folded)
    if found is not None:
        votes[found] = votes.get(found, 0.0) + COUNTRY_VOTES
        where.setdefault(found, []).extend(
            i for i, text in lines if _whole_unit_country(strip_accents(text).upper()) == found
        )
    if not votes:
        return None
    # A lone "$" is weaker evidence than an explicit code or a specific symbol.
    dollar = country.get("$")
    if dollar is not None and dollar in votes and len(votes) > 1:
        votes[dollar] = votes[dollar] // 2
    code, n = max(votes.items(), key=lambda kv: kv[1])  # the first named wins a tie
    return code, sorted(set(where[code]))[:5], n / sum(votes.values())


def _whole_unit_country(folded: str) -> str | None:
    """The first of `_WHOLE_UNIT_COUNTRIES` whose words or signs the (folded) text holds."""
    words = set(_FOLDED_WORD.findall(folded))
    signs = {m.lastgroup for m in _COUNTRY_SIGNS.finditer(folded)}
    return next(
        (code for code, named, _ in _WHOLE_UNIT_COUNTRIES if code in signs or named & words),
        None,
    )


def has_cents(text: str) -> bool:
    return bool(_CENTS.search(text.strip()))
