"""An expense category from the merchant's name and the receipt's words."""

from __future__ import annotations

import re

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (category, re.compile(rf"\b(?:{words})\b"))
    for category, words in [
        (
            "fuel",
            r"PETRO\w*|SHELL|PETRONAS|CALTEX|BP|ESSO|FUEL|DIESEL|UNLEADED|RON ?9[57]|GASOLINE|"
            r"TANKSTELLE|BENZIN|CARBURANT|GASOLINERA|LITRES?|PUMP \d+",
        ),
        ("lodging", r"HOTEL|MOTEL|INN|RESORT|HOSTEL|LODGE|ROOM CHARGE|ACCOMMODATION|CHECK ?OUT"),
        (
            "travel",
            r"AIRLINE|AIRWAYS|AIRPORT|TAXI|GRAB|UBER|TRAIN|RAIL|BUS|TOLL|PARKING|TIKET|TICKET",
        ),
        (
            "meals",
            r"RESTORAN|RESTAURANT|RESTAURANTS|CAFE|COFFEE|KOPI|BISTRO|FOOD|MAKAN|BAKERY|"
            r"BAKERIES|KITCHEN|NASI|MEE|TEA|DINE IN|TAKE ?AWAY|TABLE|PAX|SEAFOOD|BURGER|"
            r"PIZZA|MCDONALD|KFC|PUB|BAR|GRILL|SNACK\w*|DELIGHT\w*|CATERING|BRASSERIE|"
            r"TRATTORIA|GASTHAUS|SERVER|TIP|GRATUITY",
        ),
        (
            "groceries",
            r"MART|SUPERMARKET|HYPERMARKET|GROCER\w*|MINI MARKET|PASAR|AEON|TESCO|GIANT|"
            r"MYDIN|LIDL|ALDI|CARREFOUR|WALMART|SAFEWAY|KROGER|REWE|EDEKA|SAINSBURY|"
            r"PRODUCE|DAIRY|VEGETABLES?",
        ),
        (
            "office supplies",
            r"STATIONERY|BOOKS?|PAPER|PRINT\w*|TONER|INK|OFFICE|POPULAR|PEN|"
            r"FILE|A4|STAPLE\w*",
        ),
        ("hardware", r"HARDWARE|D\.?I\.?Y|ELECTRICAL|TOOLS?|PAINT|MACHINERY|BUILDING MATERIAL"),
        (
            "utilities",
            r"ELECTRICITY|TENAGA|WATER BILL|INTERNET|TELEKOM|UNIFI|MOBILE BILL|UTILITY|"
            r"GAS BILL|BROADBAND",
        ),
        ("health", r"PHARMACY|FARMASI|CLINIC|KLINIK|HOSPITAL|MEDICAL|APOTHEKE|PHARMACIE"),
    ]
]


def categorise(merchant: str | None, text: str) -> tuple[str, float] | None:
    """(category, confidence): the merchant's name counts double the rest of the text."""
    best: tuple[str, float] | None = None
    upper = text.upper()
    name = (merchant or "").upper()
    for category, pattern in _RULES:
        score = 2 * len(pattern.findall(name)) + min(len(pattern.findall(upper)), 4)
        if score and (best is None or score > best[1]):
            best = (category, float(score))
    if best is None:
        return None
    return best[0], round(min(0.3 + 0.1 * best[1], 0.85), 3)
