"""What a synthetic receipt says: rows of text with roles, and the key fields they carry."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from models.synth.locales import LOCALES, Locale


@dataclass(frozen=True)
class Segment:
    """One run of text printed on a row; `role` names the key field it carries, if any."""

    text: str
    align: str  # "left" | "right" | "center"
    role: str = ""


@dataclass
class Row:
    """One printed row: one or more segments, a size factor and an optional graphic."""

    segments: list[Segment]
    scale: float = 1.0
    bold: bool = False
    graphic: str = ""  # "" | "rule" | "barcode" | "blank"


@dataclass
class Content:
    """A receipt's rows and the truth about it."""

    rows: list[Row]
    locale: str
    currency: str
    fields: dict[str, object] = field(default_factory=dict)


def _digits(rng: random.Random, pattern: str) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(
        str(rng.randint(0, 9)) if c == "#" else rng.choice(letters) if c == "A" else c
        for c in pattern
    )


def format_amount(value: Decimal, loc: Locale) -> str:
    """An amount as the locale prints it, without currency: 1.234,50 or 1,234.50 or 1,235."""
    q = Decimal(1).scaleb(-loc.decimals)
    value = value.quantize(q, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, frac = f"{abs(value):.{loc.decimals}f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = loc.thousands.join(groups)
    return sign + (text + loc.decimal + frac if frac else text)


def with_currency(amount: str, symbol: str, loc: Locale, rng: random.Random) -> str:
    """Attach the currency the way receipts do: before or after, with or without a space."""
    space = " " if (len(symbol) > 1 or rng.random() < 0.4) else ""
    return f"{amount}{space}{symbol}" if loc.symbol_after else f"{symbol}{space}{amount}"


def _case(text: str, mode: str) -> str:
    if mode == "upper":
        return text.upper()
    if mode == "lower":
        return text.lower()
    return text


def _merchant(rng: random.Random, loc: Locale) -> str:
    names = (
        "Green Leaf",
        "Sunrise",
        "Ah Seng",
        "Müller",
        "Dupont",
        "Rossi",
        "Corner",
        "Golden Star",
        "Blue Bird",
        "Lindqvist",
        "Nowak",
        "Sharma",
        "Tanaka",
        "García",
        "De Vries",
        "Happy",
    )
    name, kind = rng.choice(names), rng.choice(loc.shop_words)
    return f"{kind} {name}" if rng.random() < 0.5 else f"{name} {kind}"


def _price(rng: random.Random, loc: Locale) -> Decimal:
    if loc.decimals == 0:
        return Decimal(rng.randint(1, 300) * 10)
    cents = rng.choice((0, 0, 50, 90, 95, 99, rng.randint(0, 99)))
    base = rng.choice((rng.randint(0, 9), rng.randint(0, 30), rng.randint(10, 120)))
    return (
        Decimal(base) + Decimal(cents) / 100 + (Decimal("0.50") if base == 0 and cents == 0 else 0)
    )


class _Builder:
    """Collects the rows of one receipt in one locale, case and currency."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.loc = loc = rng.choice(LOCALES)
        self.cur = rng.choice(loc.currencies)
        self.case = rng.choice(
            ("upper", "as_is", "as_is", "lower" if rng.random() < 0.1 else "as_is")
        )
        self.w = {k: rng.choice(v) for k, v in loc.words.items()}
        self.rows: list[Row] = []
        self.fields: dict[str, object] = {"currency": self.cur}

    def row(self, *segs: Segment, scale: float = 1.0, bold: bool = False) -> None:
        cased = [Segment(_case(s.text, self.case), s.align, s.role) for s in segs]
        self.rows.append(Row(cased, scale, bold))

    def rule(self) -> None:
        if self.rng.random() < 0.5:
            self.row(Segment(self.rng.choice("-=*.") * self.rng.randint(24, 40), "center"))
        else:
            self.rows.append(Row([], graphic="rule"))

    def header(self) -> None:
        rng, loc, f = self.rng, self.loc, self.fields
        f["merchant"] = merchant = _case(_merchant(rng, loc), self.case)
        self.row(Segment(merchant, "center", "merchant"), scale=rng.uniform(1.2, 1.8), bold=True)
        address = [f"{rng.randint(1, 250)} {rng.choice(loc.streets)}", rng.choice(loc.cities)]
        if rng.random() < 0.5:
            address[0] = f"{rng.choice(loc.streets)} {rng.randint(1, 250)}"
        f["address"] = [_case(a, self.case) for a in address]
        for part in address:
            self.row(Segment(part, "center", "address"))
        f["phone"], f["tax_id"] = _digits(rng, loc.phone), _digits(rng, loc.tax_id)
        if rng.random() < 0.85:
            self.row(Segment(f"{self.w['tel']}: {f['phone']}", "center", "phone"))
        if rng.random() < 0.8:
            self.row(Segment(f"{loc.tax_id_label}: {f['tax_id']}", "center", "tax_id"))

    def dates(self) -> None:
        rng, loc, w = self.rng, self.loc, self.w
        when = dt.datetime(2015, 1, 1) + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 365 * 11))
        date_text = when.strftime(rng.choice(loc.date_formats))
        clock = rng.choice(("%H:%M", "%H:%M:%S", "%I:%M %p" if loc.code == "en_US" else "%H:%M"))
        time_text = when.strftime(clock)
        self.fields.update(
            date=when.date().isoformat(), date_text=date_text, time=when.strftime("%H:%M")
        )
        number = f"{w['receipt']}: {_digits(rng, '#' * rng.randint(4, 8))}"
        style = rng.random()
        if style < 0.4:
            self.row(
                Segment(f"{w['date']}: {date_text}", "left", "date"),
                Segment(f"{w['time']}: {time_text}", "right", "time"),
            )
            self.row(Segment(number, "left"))
        elif style < 0.7:
            self.row(Segment(date_text, "left", "date"), Segment(time_text, "right", "time"))
            cashier = Segment(f"{w['cashier']}: {rng.randint(1, 20)}", "right")
            self.row(Segment(number, "left"), cashier)
        else:
            self.row(Segment(number, "left"))
            self.row(Segment(f"{date_text} {time_text}", "left", "date"))

    def items(self) -> Decimal:
        """Item rows in one of four till layouts; returns their sum."""
        rng, loc = self.rng, self.loc
        items: list[dict[str, object]] = []
        layout = rng.choice(("simple", "qty_line", "qty_prefix", "columns"))
        show_currency = rng.random() < 0.25
        subtotal = Decimal(0)
        for _ in range(rng.choice((1, 2, 3, 4, 5, 6, 8, 10, 12))):
            name = rng.choice(loc.items)
            qty = rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 6))
            unit = _price(rng, loc)
            amount = unit * qty
            subtotal += amount
            items.append(
                {
                    "name": _case(name, self.case),
                    "qty": qty,
                    "unit_price": str(unit),
                    "amount": str(amount),
                }
            )
            amt = format_amount(amount, loc)
            amt = with_currency(amt, self.cur, loc, rng) if show_currency else amt
            if rng.random() < 0.3 and loc.code != "en_US":
                amt += rng.choice((" A", " B", " *", " 1"))
            price = Segment(amt, "right", "item_amount")
            if layout == "simple" or (qty == 1 and layout != "columns"):
                self.row(Segment(name, "left", "item_name"), price)
            elif layout == "qty_line":
                self.row(Segment(f"{qty} x {format_amount(unit, loc)}", "left", "item_qty"))
                self.row(Segment(name, "left", "item_name"), price)
            elif layout == "qty_prefix":
                self.row(Segment(f"{qty} {name}", "left", "item_name"), price)
            else:
                unit_seg = Segment(format_amount(unit, loc), "center", "item_unit")
                self.row(Segment(f"{qty} {name}", "left", "item_name"), unit_seg, price)
        self.fields["items"] = items
        return subtotal

    def totals(self, subtotal: Decimal) -> Decimal:
        """Subtotal, tax (included or added, as the locale does) and total; returns the total."""
        rng, loc, w = self.rng, self.loc, self.w
        rate = rng.choice(loc.tax_rates)
        q = Decimal(1).scaleb(-loc.decimals)
        if loc.tax_included:
            tax = (subtotal * rate / (100 + rate)).quantize(q, rounding=ROUND_HALF_UP)
            total = subtotal
        else:
            tax = (subtotal * rate / 100).quantize(q, rounding=ROUND_HALF_UP)
            total = subtotal + tax
        total_text = format_amount(total, loc)
        if not loc.tax_included or rng.random() < 0.5:
            self.row(
                Segment(w["subtotal"], "left"),
                Segment(format_amount(subtotal, loc), "right", "subtotal"),
            )
        incl = " incl." if loc.tax_included and rng.random() < 0.5 else ""
        self.row(
            Segment(f"{loc.tax_label} {rate}%{incl}", "left"),
            Segment(format_amount(tax, loc), "right", "tax"),
        )
        printed = (
            with_currency(total_text, self.cur, loc, rng) if rng.random() < 0.6 else total_text
        )
        self.row(
            Segment(w["total"], "left", "total_label"),
            Segment(printed, "right", "total"),
            scale=rng.uniform(1.0, 1.5),
            bold=rng.random() < 0.6,
        )
        self.fields.update(
            subtotal=str(subtotal),
            tax=str(tax),
            tax_rate=rate,
            total=str(total),
            total_text=total_text,
        )
        return total

    def payment(self, total: Decimal) -> None:
        rng, loc, w = self.rng, self.loc, self.w
        self.fields["card_last4"] = None
        if rng.random() < 0.5:
            self.fields["payment"] = "cash"
            step = Decimal(rng.choice((5, 10, 20, 50))) * (100 if loc.decimals == 0 else 1)
            tendered = ((total // step) + 1) * step
            self.row(Segment(w["cash"], "left"), Segment(format_amount(tendered, loc), "right"))
            change = format_amount(tendered - total, loc)
            self.row(Segment(w["change"], "left"), Segment(change, "right"))
            return
        self.fields["payment"] = "card"
        self.fields["card_last4"] = last4 = _digits(rng, "####")
        self.row(Segment(w["card"], "left"), Segment(format_amount(total, loc), "right"))
        mask = rng.choice(("************", "XXXX XXXX XXXX ", "**** "))
        self.row(Segment(mask + last4, "left", "card_last4"))
        if rng.random() < 0.5:
            self.row(Segment(f"AUTH {_digits(rng, '######')}", "left"))

    def footer(self) -> None:
        rng = self.rng
        self.row(Segment(self.w["thanks"], "center"))
        if rng.random() < 0.6:
            web = str(self.fields["merchant"]).split()[0].lower().strip(".,")
            self.row(Segment(rng.choice(self.loc.words["footer"]).replace("{web}", web), "center"))
        if rng.random() < 0.35:
            self.rows.append(Row([], graphic="barcode"))


def make_content(rng: random.Random) -> Content:
    """Draw one receipt's rows and fields from a random locale and layout."""
    b = _Builder(rng)
    b.header()
    b.rule()
    b.dates()
    b.rule()
    subtotal = b.items()
    b.rule()
    total = b.totals(subtotal)
    b.payment(total)
    b.rule()
    b.footer()
    return Content(rows=b.rows, locale=b.loc.code, currency=b.cur, fields=b.fields)


#: Syllables of shop names as tills print them: Malay, romanised Chinese and Indian names.
_NAME_SYLLABLES = [
    "AH",
    "AIK",
    "AN",
    "BA",
    "BEE",
    "BENG",
    "BOON",
    "CHAI",
    "CHAN",
    "CHEN",
    "CHEONG",
    "CHIN",
    "CHONG",
    "CHOO",
    "CHUAN",
    "DA",
    "FAH",
    "FOO",
    "FOOK",
    "FUNG",
    "GAN",
    "GEE",
    "GIN",
    "GOH",
    "HAI",
    "HAN",
    "HENG",
    "HIN",
    "HING",
    "HOCK",
    "HONG",
    "HOO",
    "HUAT",
    "JAYA",
    "JIA",
    "KAH",
    "KAM",
    "KEE",
    "KENG",
    "KHOO",
    "KIAN",
    "KIM",
    "KOK",
    "KONG",
    "KUAN",
    "LAI",
    "LAM",
    "LEE",
    "LEONG",
    "LIAN",
    "LIM",
    "LING",
    "LOH",
    "LOK",
    "LONG",
    "LOON",
    "MAH",
    "MEI",
    "MING",
    "MOH",
    "NAM",
    "NG",
    "ONG",
    "PENG",
    "POH",
    "RAJ",
    "RAM",
    "SAN",
    "SENG",
    "SHENG",
    "SIANG",
    "SIEW",
    "SIN",
    "SOON",
    "SRI",
    "SUN",
    "TAI",
    "TAN",
    "TAT",
    "TECK",
    "TEO",
    "THYE",
    "TIAN",
    "TONG",
    "UNI",
    "WAH",
    "WAN",
    "WEI",
    "WENG",
    "WING",
    "WONG",
    "YAP",
    "YEE",
    "YEW",
    "YIN",
    "YONG",
    "YUEN",
]
#: Words of shop names and kinds (many tills print the name in big or bold capitals).
_NAME_WORDS = [
    "ADVANCE",
    "AGENCY",
    "ALAM",
    "ASIA",
    "AUTO",
    "BAKERY",
    "BAKERIES",
    "BERJAYA",
    "BISTRO",
    "BOOKS",
    "BOUTIQUE",
    "CAFE",
    "CASH",
    "CARRY",
    "CATERING",
    "CENTRE",
    "CIRCLE",
    "CITY",
    "COMPANY",
    "CONFECTIONERY",
    "CORNER",
    "DAILY",
    "DELI",
    "DISTRIBUTOR",
    "ELECTRICAL",
    "ENGINEERING",
    "ENTERPRISE",
    "FAMILY",
    "FASHION",
    "FOOD",
    "FRESH",
    "FRUITS",
    "GALLERY",
    "GARDEN",
    "GLOBAL",
    "GOLDEN",
    "HANDICRAFT",
    "HARDWARE",
    "HEALTH",
    "HOLDINGS",
    "HOUSE",
    "HYPERMARKET",
    "INDUSTRIES",
    "INTERNATIONAL",
    "KEDAI",
    "KITCHEN",
    "LIGHTING",
    "MACHINERY",
    "MAKANAN",
    "MART",
    "MARKETING",
    "MINI",
    "MARKET",
    "MEDICAL",
    "MOTOR",
    "NASI",
    "PARKING",
    "PERNIAGAAN",
    "PETROL",
    "PHARMACY",
    "PRINTING",
    "RESOURCES",
    "RESTAURANT",
    "RESTORAN",
    "RETAIL",
    "SEAFOOD",
    "SERVICES",
    "STATION",
    "STATIONERY",
    "STORE",
    "SUPERMARKET",
    "SYARIKAT",
    "TEA",
    "TRADING",
    "TRAVEL",
    "UNITED",
    "VENTURE",
    "WORLD",
]
_NAME_ENDS = (
    "SDN BHD",
    "SDN. BHD.",
    "(M) SDN BHD",
    "SDN BHD.",
    "BHD",
    "ENTERPRISE",
    "TRADING",
    "& CO",
    "& SONS",
    "LTD",
    "PLC",
    "GMBH",
    "S.A.",
    "LLC",
    "INC.",
    "",
)


def _pseudo_word(rng: random.Random) -> str:
    """A made-up word of consonant-vowel syllables: a name the recognizer cannot have learnt."""
    vowels, consonants = "AEIOU", "BCDFGHJKLMNPRSTVWYZ"
    word = ""
    for _ in range(rng.randint(2, 4)):
        word += rng.choice(consonants) * (rng.random() < 0.85) + rng.choice(vowels)
        if rng.random() < 0.3:
            word += rng.choice("KLMNRST")
    return word


def shop_name(rng: random.Random) -> str:
    """A shop's name as a header prints it: names and made-up words, a trade, a company form."""
    words: list[str] = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.45:
            words.append(rng.choice(_NAME_SYLLABLES))
        elif r < 0.7:
            words.append(_pseudo_word(rng))
        else:
            words.append(rng.choice(_NAME_WORDS))
    if rng.random() < 0.6:
        words.append(rng.choice(_NAME_WORDS))
    if rng.random() < 0.5:
        words.append(rng.choice(_NAME_ENDS))
    if rng.random() < 0.15:
        words.insert(
            rng.randrange(len(words) + 1), rng.choice(("&", "-", f"({rng.choice('MKS')})"))
        )
    text = " ".join(w for w in words if w)
    return text if rng.random() < 0.85 else text.title()


def random_line_text(rng: random.Random, charset: str) -> str:
    """A text for a single line crop: a receipt row, a shop's name, a number, or random
    characters."""
    r = rng.random()
    if r < 0.12:
        return shop_name(rng)
    if r < 0.55:
        content = make_content(rng)
        segs = [s.text for row in content.rows for s in row.segments]
        text = rng.choice(segs)
        if rng.random() < 0.3:
            row = rng.choice([row for row in content.rows if row.segments])
            text = (" " * rng.randint(1, 6)).join(s.text for s in row.segments)
        return text
    if r < 0.8:
        loc = rng.choice(LOCALES)
        amount = format_amount(Decimal(rng.randint(0, 10 ** rng.randint(2, 7))) / 100, loc)
        pre = rng.choice(("", "", rng.choice(loc.words["total"]) + " ", f"{rng.randint(1, 9)} x "))
        return pre + with_currency(amount, rng.choice(loc.currencies), loc, rng)
    length = rng.randint(1, 24)
    pool = charset.strip() if rng.random() < 0.35 else "".join(chr(c) for c in range(0x21, 0x7F))
    words: list[str] = []
    while sum(len(x) + 1 for x in words) < length:
        words.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
    return " ".join(words)
