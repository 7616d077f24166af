"""Synthetic receipts in several locales: the fields, the arithmetic and the review flag."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.extraction import extract_fields
from models.extraction.extract import DEFAULT_CALIBRATION
from tests.models.extraction.synthetic import lines

Rows = list[str | tuple[str, str]]

US_DINER: Rows = [
    "JOE'S DINER",
    "123 MAIN ST",
    "SPRINGFIELD, IL 62704",
    "TEL (217) 555-0100",
    ("03/04/2024", "7:45 PM"),
    ("2 x BURGER", "24.00"),
    ("1 x SALAD", "16.00"),
    ("SUBTOTAL", "40.00"),
    ("SALES TAX 8%", "3.20"),
    ("TIP", "8.00"),
    ("TOTAL", "$51.20"),
    ("VISA ************1234", "51.20"),
    "THANK YOU",
]


def test_us_month_first_date_tip_and_card() -> None:
    result = extract_fields(lines(US_DINER, tall={0}))
    f = result.fields
    assert f.merchant is not None and f.merchant.value == "JOE'S DINER"
    assert f.date is not None and f.date.value == dt.date(2024, 3, 4)
    assert f.time is not None and f.time.value == dt.time(19, 45)
    assert f.total is not None and f.total.value == Decimal("51.20")
    assert f.subtotal is not None and f.subtotal.value == Decimal("40.00")
    assert f.tip is not None and f.tip.value == Decimal("8.00")
    assert [t.amount for t in f.taxes] == [Decimal("3.20")]
    assert f.taxes[0].rate == Decimal("8")
    assert f.currency is not None and f.currency.value == "USD"
    assert f.card_brand is not None and f.card_brand.value == "Visa"
    assert f.card_last4 is not None and f.card_last4.value == "1234"
    assert f.payment_method is not None and f.payment_method.value == "card"
    assert f.total.confidence >= 0.8
    assert not result.needs_review, result.review_reasons
    # The total's evidence points at the lines it came from.
    assert any("TOTAL" in ln.text for ln in lines(US_DINER) if ln.id in f.total.lines)


def test_a_us_city_and_state_without_zip_or_dollar_reads_month_first() -> None:
    """'Boston, MA' and an EIN say American even where neither a ZIP nor a '$' is printed."""
    rows: Rows = [
        "DE VRIES DELI",
        "224 MAIN ST",
        "BOSTON, MA",
        "EIN: 97-2469527",
        ("01/07/2021", "11:37"),
        ("TOTAL", "12.50"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.date is not None and f.date.value == dt.date(2021, 1, 7)
    elsewhere = [r for r in rows if r not in ("BOSTON, MA", "EIN: 97-2469527")]
    day_first = extract_fields(lines(elsewhere)).fields
    assert day_first.date is not None and day_first.date.value == dt.date(2021, 7, 1)


def test_card_number_never_kept_beyond_last_four() -> None:
    result = extract_fields(lines(US_DINER))
    dumped = result.fields.model_dump_json()
    assert "************1234" not in dumped
    assert result.fields.card_last4 is not None and result.fields.card_last4.value == "1234"


EURO_BAKERY: Rows = [
    "Bäckerei Müller GmbH",
    "Hauptstraße 5",
    "10115 Berlin",
    "Datum: 03.04.2024 08:15",
    ("2 x Brötchen 0,80", "1,60"),
    ("Kaffee", "2,90"),
    ("Kuchen", "8,00"),
    ("Summe EUR", "12,50"),
    ("MwSt 7% enthalten", "0,82"),
    ("Bar", "20,00"),
    ("Rückgeld", "7,50"),
]


def test_euro_decimal_commas_and_day_first_date() -> None:
    result = extract_fields(lines(EURO_BAKERY))
    f = result.fields
    assert f.merchant is not None and f.merchant.value == "Bäckerei Müller GmbH"
    assert f.address is not None and "10115 Berlin" in f.address.value
    assert f.date is not None and f.date.value == dt.date(2024, 4, 3)
    assert f.total is not None and f.total.value == Decimal("12.50")
    assert f.tendered is not None and f.tendered.value == Decimal("20.00")
    assert f.change is not None and f.change.value == Decimal("7.50")
    assert f.currency is not None and f.currency.value == "EUR"
    assert [it.amount for it in f.items] == [Decimal("1.60"), Decimal("2.90"), Decimal("8.00")]
    assert f.items[0].quantity == Decimal("2") and f.items[0].unit_price == Decimal("0.80")
    assert f.payment_method is not None and f.payment_method.value == "cash"
    assert not result.needs_review, result.review_reasons


UK_SHOP: Rows = [
    "CORNER STORES LTD",
    "12 HIGH STREET",
    "LONDON SW1A 1AA",
    "VAT NO: GB 123 4567 89",
    ("14/02/2024", "13:02"),
    ("MILK 2 PINTS", "£1.25"),
    ("BREAD", "£1.40"),
    ("WINE", "£22.34"),
    ("TOTAL", "£24.99"),
    ("VAT 20% INCLUDED", "£4.17"),
    ("CARD PAYMENT", "£24.99"),
    "MASTERCARD **** **** **** 9876",
]


def test_uk_vat_and_pound_sign() -> None:
    result = extract_fields(lines(UK_SHOP))
    f = result.fields
    assert f.merchant is not None and f.merchant.value == "CORNER STORES LTD"
    assert f.date is not None and f.date.value == dt.date(2024, 2, 14)
    assert f.total is not None and f.total.value == Decimal("24.99")
    assert f.currency is not None and f.currency.value == "GBP"
    assert [t.amount for t in f.taxes] == [Decimal("4.17")] or f.taxes == []
    assert f.tax_id is not None and "123" in f.tax_id.value
    assert f.card_last4 is not None and f.card_last4.value == "9876"
    assert f.card_brand is not None and f.card_brand.value == "Mastercard"
    assert sum(it.amount or 0 for it in f.items) == Decimal("24.99")


def test_thousands_separators_both_ways() -> None:
    us = extract_fields(lines(["BIG STORE INC", ("GRAND TOTAL", "$1,234.56")]))
    eu = extract_fields(lines(["GROSSER LADEN GMBH", ("Gesamtbetrag", "1.234,56 €")]))
    assert us.fields.total is not None and us.fields.total.value == Decimal("1234.56")
    assert eu.fields.total is not None and eu.fields.total.value == Decimal("1234.56")


def test_ocr_noise_and_total_split_over_two_lines() -> None:
    rows: Rows = [
        "NOISY MART SDN BHD",
        "DATE: O5/O6/2O19",
        ("ITEM A", "4.5O"),
        ("ITEM B", "6.00"),
        "T0TAL",
        ("", "1O.5O"),
        ("CASH", "20.00"),
        ("CHANGE", "9.50"),
    ]
    built = [ln for ln in lines(rows) if ln.text]
    result = extract_fields(built)
    f = result.fields
    assert f.total is not None and f.total.value == Decimal("10.50")
    assert f.date is not None and f.date.value == dt.date(2019, 6, 5)
    assert f.tendered is not None and f.tendered.value == Decimal("20.00")


def test_numbers_that_do_not_add_up_need_review() -> None:
    rows: Rows = [
        "ODD SHOP LTD",
        "01/02/2023",
        ("SUBTOTAL", "10.00"),
        ("TAX", "1.00"),
        ("TOTAL", "15.00"),
        ("CASH", "20.00"),
        ("CHANGE", "3.00"),
    ]
    result = extract_fields(lines(rows))
    assert result.needs_review
    assert any("does not add up" in r for r in result.review_reasons)
    assert any("tendered" in r for r in result.review_reasons)


def test_consistency_raises_confidence() -> None:
    """The raw score rises with the arithmetic; the calibrated one never falls with it (the
    table maps scores to SROIE train accuracy, where contradicted totals are rare)."""
    broken_rows: Rows = [r if r != ("TIP", "8.00") else ("TIP", "9.00") for r in US_DINER]
    for calibration in (None, DEFAULT_CALIBRATION):
        consistent = extract_fields(lines(US_DINER), calibration=calibration)
        broken = extract_fields(lines(broken_rows), calibration=calibration)
        assert consistent.fields.total is not None and broken.fields.total is not None
        if calibration is None:
            assert consistent.fields.total.confidence > broken.fields.total.confidence
        assert consistent.fields.total.confidence >= broken.fields.total.confidence
        assert broken.needs_review and not consistent.needs_review
        assert any("does not add up" in r for r in broken.review_reasons)


def test_no_lines_needs_review() -> None:
    result = extract_fields([])
    assert result.needs_review and result.review_reasons
    assert result.fields.total is None


def test_tax_and_receipt_numbers_in_other_languages_and_only_after_a_whole_label() -> None:
    """'Adószám' and 'Účtenka' are read with their accents; 'MEDICAL ... 12345' holds the
    letters of 'DIC' (the Czech tax number's label) but no label."""
    rows: Rows = [
        "Lékárna Novák",
        "Masarykova 84",
        "110 00 Praha 1",
        "DIČ: CZ47293768",
        "Účtenka: 9413377",
        ("Rohlík", "12,90"),
        ("CELKEM", "12,90 Kč"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.tax_id is not None and f.tax_id.value == "CZ47293768"
    assert f.receipt_number is not None and f.receipt_number.value == "9413377"
    assert f.currency is not None and f.currency.value == "CZK"
    assert f.total is not None and f.total.value == Decimal("12.90")
    medical = extract_fields(
        lines(["MEDICAL CENTRE 12345", ("PANADOL", "9.90"), ("TOTAL", "9.90")])
    )
    assert medical.fields.tax_id is None
