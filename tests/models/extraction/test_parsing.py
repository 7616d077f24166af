"""Amounts, dates and OCR clean-up on their own."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from models.extraction.amounts import (
    clean_amount_text,
    detect_currency,
    find_amounts,
    guess_decimal_comma,
    guess_whole_units,
)
from models.extraction.dates import find_dates, find_short_dates, find_time, parse_date_string
from models.extraction.keywords import Label, label_of
from models.extraction.normalize import fix_digits, tidy_case


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("RM 33.92", "33.92", "MYR"),
        ("-RM 0.02", "-0.02", "MYR"),
        ("1,234.56", "1234.56", None),
        ("1.234,56 EUR", "1234.56", "EUR"),
        ("€ 12,50", "12.50", "EUR"),
        ("12. 50", "12.50", None),
        ("0.02-", "-0.02", None),
        ("(0.02)", "-0.02", None),
        ("$1,299.00", "1299.00", "USD"),
        ("RM .01", "0.01", "MYR"),
        ("10.5O", "10.50", None),
        ("S$ 4.00", "4.00", "SGD"),
    ],
)
def test_amounts(text: str, value: str, currency: str | None) -> None:
    found = find_amounts(clean_amount_text(text), 0, decimal_comma="€" in text or "EUR" in text)
    assert [a.value for a in found] == [Decimal(value)]
    assert found[0].currency == currency


@pytest.mark.parametrize(
    "text", ["X2.50ML", "10.00%", "QTY 2", "TEL 03-1234 5678", "SKU12.50", "AM39", "ITEM4.00"]
)
def test_not_amounts(text: str) -> None:
    assert find_amounts(clean_amount_text(text), 0) == []


@pytest.mark.parametrize(
    ("text", "value", "start"),
    [
        # 'GRAND TOTAL RM39.00' with its 'R' read as 'A'; 'ROUNDED TOTAL RM21.85' run together
        ("GranD TOTAL AM39.00", "39.00", 12),
        ("EAR TARM21.85", "21.85", 4),
    ],
)
def test_a_misread_currency_mark_glued_to_the_amount_still_marks_it(
    text: str, value: str, start: int
) -> None:
    found = find_amounts(clean_amount_text(text), 0)
    assert [a.value for a in found] == [Decimal(value)]
    assert found[0].start == start


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("33,76 zł", "33.76", "PLN"),
        ("SUMA PLN 1 143,91", "1143.91", "PLN"),  # thousands grouped by a space
        ("1\u00a0750,67 €", "1750.67", "EUR"),  # ... or by a no-break space
        ("156,00 kr", "156.00", None),  # Swedish, Norwegian or Danish: money, no currency
        ("Rs. 120.00", "120.00", "INR"),
        ("SEK 89,90", "89.90", "SEK"),
    ],
)
def test_amounts_on_decimal_comma_receipts_and_marks_after_them(
    text: str, value: str, currency: str | None
) -> None:
    found = find_amounts(clean_amount_text(text), 0, decimal_comma="." not in text)
    assert [a.value for a in found] == [Decimal(value)]
    assert found[0].currency == currency


def test_a_letter_mark_before_a_number_is_part_of_a_code() -> None:
    """'FT' is the forint after an amount, but 'CASHIER:FT8303' is a cashier's code."""
    assert find_amounts(clean_amount_text("CASHIER:FT8303"), 0) == []
    assert detect_currency([(0, "CASHIER:FT8303"), (1, "KRAFT 12.50")]) is None
    assert detect_currency([(0, "1 250 Ft")]) == ("HUF", [0], 1.0)


def test_space_grouping_is_read_only_on_decimal_comma_receipts() -> None:
    """'1 143,91' is one amount where decimals are commas; on a receipt writing decimal points
    '2 143.91' is a quantity and a price."""
    assert [a.value for a in find_amounts("1 143,91", 0, decimal_comma=True)] == [
        Decimal("1143.91")
    ]
    assert [a.value for a in find_amounts("2 143.91", 0)] == [Decimal("143.91")]


def test_a_dollar_or_krone_is_the_one_of_the_country_the_receipt_names() -> None:
    """'$' is the US dollar unless the receipt's words name another dollar's country; 'kr' is
    the krone of the country named, and names none alone."""
    assert detect_currency([(0, "TOTAL $12.50")]) == ("USD", [0], 1.0)
    assert detect_currency([(0, "ABN: 51 824 753 556"), (1, "TOTAL $12.50")])[0] == "AUD"
    assert detect_currency([(0, "Sydney NSW 2000"), (1, "TOTAL $12.50")])[0] == "AUD"
    assert detect_currency([(0, "HST 13%"), (1, "TOTAL $12.50")])[0] == "CAD"
    assert detect_currency([(0, "CVR: 12345678"), (1, "I ALT 45,00 kr.")])[0] == "DKK"
    assert detect_currency([(0, "Moms 25%"), (1, "Totalt 45,00 kr")])[0] == "SEK"
    assert detect_currency([(0, "Totalt 45,00 kr")]) is None


def test_an_iso_code_votes_as_printed_not_as_a_street_abbreviation() -> None:
    """'Cumhuriyet Cad. 12' is a Turkish street, not Canadian dollars; 'TL' after an amount
    is the lira."""
    assert detect_currency([(0, "Cumhuriyet Cad. 12"), (1, "TOPLAM 45,90 TL")]) == (
        "TRY",
        [1],
        1.0,
    )
    assert detect_currency([(0, "CAD 12.00")])[0] == "CAD"


def test_forints_grouped_by_spaces_without_decimals() -> None:
    """On a receipt of whole units '10 860' is ten thousand eight hundred and sixty (a
    Hungarian till), and a tax code after it stays apart ('4 440 B')."""
    assert [a.value for a in find_amounts("10 860 Ft", 0, whole_units=True)] == [Decimal("10860")]
    assert [a.value for a in find_amounts("4 440 B", 0, whole_units=True)] == [Decimal("4440")]
    assert [a.value for a in find_amounts("10 860", 0)] == []  # not money where cents are
    assert guess_whole_units(["ÖSSZESEN 10 860", "KÉSZPÉNZ 11 000"], None)


def test_a_whole_unit_country_outvotes_a_stray_mark_and_names_an_unmarked_receipt() -> None:
    """A Hungarian or Japanese receipt often prints no mark on its amounts, and a smudged
    digit can read as one ('1 02€' for '1 020'): the country's words vote for its currency."""
    hungarian = [(0, "ADÓSZÁM: 18101704-3-94"), (1, "1 02€"), (2, "ÖSSZESEN 17 680")]
    assert detect_currency(hungarian) == ("HUF", [0, 2], 0.6)
    assert detect_currency([(0, "Shinjuku, Tokyo"), (1, "Amount Due 3,480")])[0] == "JPY"
    # ... but a receipt that marks its amounts in another currency keeps it
    assert detect_currency([(0, "BUDAPEST"), (1, "12,50 €"), (2, "TOTAL 20,00 €")])[0] == "EUR"
    # a code is a whole word in any script: 'KÖSZÖNÖK' read 'KÖSZÖNOK' names no krone
    assert detect_currency([(0, "KÖSZÖNOK")]) is None


def test_codes_are_not_money_on_a_receipt_of_whole_units() -> None:
    for text in ("NYUGTA: 82846102", "AUTH 938796", "XXXX XXXX XXXX 2138", "TEL.: +36 1 841 2670"):
        assert find_amounts(text, 0, whole_units=True) == [], text
    assert [a.value for a in find_amounts("12 240", 0, whole_units=True)] == [Decimal("12240")]
    # a label right before the number makes it a code, not one earlier on the line
    assert [a.value for a in find_amounts("No.2 Ramen 880", 0, whole_units=True)] == [
        Decimal("880")
    ]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("JPY 11,930", ["11930"]),
        ("Cash Tendered 12,000", ["12000"]),  # never 12.00
        ("Bento Box 4,680 *", ["4680"]),
        ("Change 70", ["70"]),
        ("6 x 780", ["780"]),  # the 6 is a quantity
        ("Rp 25.000", ["25000"]),
        ("2019/09/28 08:12", []),  # a date and a time are not money
        ("Tel: 03-5403-5664", []),
    ],
)
def test_amounts_in_a_currency_without_a_minor_unit(text: str, values: list[str]) -> None:
    found = find_amounts(clean_amount_text(text), 0, whole_units=True)
    assert [a.value for a in found] == [Decimal(v) for v in values]


def test_whole_units_come_from_the_currency_or_from_amounts_without_cents() -> None:
    assert guess_whole_units(["TOTAL 12.50"], "JPY")
    assert not guess_whole_units(["7,120", "9,840"], "MYR")
    # no currency named: thousands groups and no cents anywhere is a yen-like receipt
    assert guess_whole_units(["Karaage 9,840", "TOTAL DUE 24,440"], None)
    assert not guess_whole_units(["CASH 100.000", "TOTAL 12.50"], None)
    assert not guess_whole_units(["DATE 2019.02.16", "ITEM 12"], None)


def test_decimal_comma_is_judged_by_the_whole_receipt() -> None:
    assert guess_decimal_comma(["1,60", "2,90", "Summe 12,50"])
    assert not guess_decimal_comma(["1.60", "TOTAL 1,299.00"])


@pytest.mark.parametrize(
    ("text", "day_first", "month_first"),
    [
        ("25/12/2018 8:13:39 PM", dt.date(2018, 12, 25), None),
        ("12-01-19 21:13", dt.date(2019, 1, 12), dt.date(2019, 12, 1)),
        ("25 DEC 2018", dt.date(2018, 12, 25), dt.date(2018, 12, 25)),
        ("2019.09.15.10:57", dt.date(2019, 9, 15), dt.date(2019, 9, 15)),  # the time glued on
        ("Dec 25, 2018", dt.date(2018, 12, 25), dt.date(2018, 12, 25)),
        ("2018-12-25", dt.date(2018, 12, 25), dt.date(2018, 12, 25)),
        ("Datum: 03.04.2023", dt.date(2023, 4, 3), dt.date(2023, 3, 4)),
        ("20180125", dt.date(2018, 1, 25), dt.date(2018, 1, 25)),
        ("O1/O2/2O19", dt.date(2019, 2, 1), dt.date(2019, 1, 2)),
        ("15 janv. 2024", dt.date(2024, 1, 15), dt.date(2024, 1, 15)),
    ],
)
def test_dates(text: str, day_first: dt.date, month_first: dt.date | None) -> None:
    found = find_dates(text, 0)
    assert found
    assert found[0].day_first == day_first
    assert found[0].month_first == month_first


def test_six_digit_dates_need_a_date_word_or_a_time_on_their_row() -> None:
    (found,) = find_short_dates("190214", 0, "DATUM: 190214 TID: 20:23")
    assert found.day_first == found.month_first == dt.date(2019, 2, 14)
    assert find_short_dates("161223", 0, "161223 07:49")  # a clock time beside it
    assert find_short_dates("706760", 0, "KVITTONR: 706760") == []  # a receipt number
    assert find_short_dates("191399", 0, "DATUM: 191399") == []  # no 13th month
    assert find_dates("DATUM: 190214", 0) == []  # never among the ordinary dates


def test_date_string_and_impossible_dates() -> None:
    assert parse_date_string("04/05/2018") == dt.date(2018, 5, 4)
    assert parse_date_string("04/05/2018", day_first=False) == dt.date(2018, 4, 5)
    assert parse_date_string("31/02/2018") is None
    assert parse_date_string("no date here") is None


def test_times() -> None:
    assert find_time("8:13:39 PM") == dt.time(20, 13, 39)
    assert find_time("12:05 AM") == dt.time(0, 5)
    assert find_time("14h05") == dt.time(14, 5)
    assert find_time("TOTAL 12.50") is None


def test_fix_digits_only_touches_numbers() -> None:
    assert fix_digits("T0TAL 1O.5O") == "T0TAL 10.50"
    assert fix_digits("SOLD") == "SOLD"
    assert fix_digits("I5.00") == "15.00"


@pytest.mark.parametrize(
    ("read", "shown"),
    [
        ("81200 JohOR BAHRU,JoHor", "81200 JOHOR BAHRU,JOHOR"),
        ("Dove HoLDINGs SDN BHD", "Dove HOLDINGS SDN BHD"),
        ("No.12, Jalan PERmAs Jaya 10, 81750 Masai", "No.12, Jalan Permas Jaya 10, 81750 Masai"),
        ("ÉPICERIE FiNE", "ÉPICERIE FINE"),
        # regular words are left as printed, whatever their mix on the line
        ("McDonald's Restaurant", "McDonald's Restaurant"),
        ("Bäckerei Müller GmbH", "Bäckerei Müller GmbH"),
        ("Hauptstraße 5, 10115 BERLIN", "Hauptstraße 5, 10115 BERLIN"),
        ("Café de Flore", "Café de Flore"),
    ],
)
def test_tidy_case_mends_words_read_in_no_case(read: str, shown: str) -> None:
    assert tidy_case(read) == shown


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("TOTAL", Label.TOTAL),
        ("Grand Total", Label.TOTAL),
        ("Summe", Label.TOTAL),
        ("TOTAL À PAYER", Label.TOTAL),
        ("Total (inclusive of GST)", Label.TOTAL),
        ("SUB-TOTAL", Label.SUBTOTAL),
        ("Zwischensumme", Label.SUBTOTAL),
        ("MwSt 19%", Label.TAX),
        ("GST @6%", Label.TAX),
        ("TVA 20%", Label.TAX),
        ("Rückgeld", Label.CHANGE),
        ("CHANGE DUE", Label.CHANGE),
        ("Propina", Label.TIP),
        ("ROUNDING ADJ", Label.ROUNDING),
        ("CASH", Label.TENDERED),
        ("TOTAL QTY", Label.IGNORE),
        ("Rabatt", Label.DISCOUNT),
        ("DO ZAPŁATY", Label.TOTAL),  # a stroked Ł folds to L
        ("Suma częściowa", Label.SUBTOTAL),
        ("Delsumma", Label.SUBTOTAL),
        ("GOTÓWKA", Label.TENDERED),
        ("Reszta", Label.CHANGE),
        ("Tillbaka", Label.CHANGE),
        ("Zurück", Label.CHANGE),
        ("Terug", Label.CHANGE),
    ],
)
def test_labels_in_many_languages(text: str, label: Label) -> None:
    found = label_of(text)
    assert found is not None and found[0] is label
