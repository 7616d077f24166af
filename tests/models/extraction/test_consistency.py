"""Choosing the total by arithmetic, and reading keywords and names through OCR damage."""

from __future__ import annotations

from decimal import Decimal

from models.extraction import extract_fields
from models.extraction.keywords import Label, label_of
from models.extraction.lexicon import repair_words
from tests.models.extraction.synthetic import lines

Rows = list[str | tuple[str, str]]


def test_a_subtotal_confirmed_by_the_payment_is_the_total() -> None:
    """No line says 'TOTAL': the subtotal that cash minus change confirms is what was paid."""
    rows: Rows = [
        "KEDAI ABC",
        "05/01/2018",
        ("FRIED RICE", "8.50"),
        ("ICE TEA", "4.30"),
        ("TEA", "4.30"),
        ("SUBTOTAL", "17.10"),
        ("CASH", "50.00"),
        ("CHANGE", "32.90"),
    ]
    result = extract_fields(lines(rows))
    f = result.fields
    assert f.total is not None and f.total.value == Decimal("17.10")
    assert f.tendered is not None and f.tendered.value == Decimal("50.00")


def test_a_misread_tender_label_is_implied_by_the_change() -> None:
    rows: Rows = [
        "FARMASI XYZ",
        ("1 X 7.00", "7.00"),
        ("TOTAL (INCLUDING GST)", "79.35"),
        ("NET", "79.35"),
        ("TENOER", "100.00"),  # OCR damage: 'TENDER'
        ("CHANGE/BALANCE", "20.65"),
        ("ZRL @0.00%", "7.00"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.total is not None and f.total.value == Decimal("79.35")
    assert f.change is not None and f.change.value == Decimal("20.65")


def test_a_later_total_built_on_an_earlier_one_wins() -> None:
    """'TOTAL AMOUNT' before service charge and tax, then the final 'TOTAL AMOUNT'."""
    rows: Rows = [
        "WARAKUYA SDN BHD",
        ("SUBTOTAL", "79.60"),
        ("DISCOUNT", "-30.00"),
        ("TOTAL AMOUNT :", "49.60"),
        ("SERV CHARGE 10%", "4.96"),
        ("GST @ 6%", "3.27"),
        ("ROUNDING ADJ :", "-0.03"),
        ("TOTAL AMOUNT:", "57.80"),
    ]
    result = extract_fields(lines(rows))
    f = result.fields
    assert f.total is not None and f.total.value == Decimal("57.80")
    assert f.tip is not None and f.tip.value == Decimal("4.96")
    assert not any("does not add up" in r for r in result.review_reasons)


def test_tax_summary_rows_are_not_totals() -> None:
    rows: Rows = [
        "SHOP SDN BHD",
        ("SUBTOTAL", "25.00"),
        ("CASH", "50.00"),
        ("CHANGE", "25.00"),
        "TAX SUMMARY",
        ("SR:INCLUSIVE OF GST @6%", "23.58"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.total is not None and f.total.value == Decimal("25.00")


def test_keywords_survive_one_ocr_error() -> None:
    assert label_of("TENOER") == (Label.TENDERED, 1.0)
    assert label_of("SUBT0TAL") == (Label.SUBTOTAL, 1.0)
    assert label_of("R0UNDING ADJ") == (Label.ROUNDING, 1.0)
    assert label_of("GST PAYABLE (6%)") == (Label.TAX, 1.0)
    assert label_of("PAID AMOUNT :") == (Label.TENDERED, 1.0)
    assert label_of("TOTAL INCLUDE GST") == (Label.TOTAL, 1.0)
    assert label_of("SERV.CHG. 10%") == (Label.TIP, 1.0)
    assert label_of("CASHIER") is None


def test_common_words_of_names_and_addresses_are_repaired() -> None:
    assert repair_words("SWC ENTERORISE SDN BHD") == "SWC ENTERPRISE SDN BHD"
    assert repair_words("HAPPY SNACKS ENTYERPRISE") == "HAPPY SNACKS ENTERPRISE"
    assert repair_words("KAWASAN PERINOUSTRIAN, MALAYSLA") == "KAWASAN PERINDUSTRIAN, MALAYSIA"
    assert repair_words("Basemant 1") == "Basement 1"
    # Real words one edit from a lexicon word, and shop names, are left alone.
    assert repair_words("PASARAYA BORONG PINTAR") == "PASARAYA BORONG PINTAR"
    assert repair_words("BENS INDEPENDENT GROCER") == "BENS INDEPENDENT GROCER"
    assert repair_words("Supermarkt Happy") == "Supermarkt Happy"
    assert repair_words("GERPANG ALAF") == "GERPANG ALAF"


def test_the_registered_company_and_the_brand_above_its_outlet() -> None:
    registered: Rows = [
        "TRI SHAAS SDN BHD (728515-M)",
        "MYDIN MART SRI MUDA",
        "4-20, JALAN RIA 25/62 TAMAN SRI MUDA",
        "SEKSYEN 25, 40400 SHAH ALAM SELANGOR",
    ]
    f = extract_fields(lines(registered)).fields
    assert f.merchant is not None and f.merchant.value == "TRI SHAAS SDN BHD"
    outlet: Rows = [
        "TAX INVOICE",
        "DOMINO'S PIZZA",
        "GST REF NO : 001694261248",
        "DOMINO'S PIZZA PERMAS JAYA",
        "NO.12, JALAN PERMAS JAYA 10,",
        "BANDAR BARU PERMAS JAYA, 81750 MASAI",
    ]
    f = extract_fields(lines(outlet)).fields
    assert f.merchant is not None and f.merchant.value == "DOMINO'S PIZZA"


def test_a_branch_title_before_the_address_is_not_part_of_it() -> None:
    rows: Rows = [
        "SUSHI MENTAI",
        "SUSHI MENTAI PLAZA DANAU",
        "NO.37-1, PLAZA DANAU DESA 2, JALAN 109F,",
        "TAMAN DANAU DESA, 58100 KUALA LUMPUR.",
        "TEL: 03-1234 5678",
    ]
    f = extract_fields(lines(rows)).fields
    assert f.address is not None
    assert f.address.value.startswith("NO.37-1"), f.address.value


def test_items_adding_up_to_a_subtotal_vouch_only_for_the_total_it_makes() -> None:
    """The total's label was lost ('NET TOTAL' over a broken '25. 0') and the payment lines
    lost theirs: the items match the subtotal, and that speaks for 25.00, not for the larger
    tendered 50.00 that nothing adds up to."""
    rows: Rows = [
        "KEDAI ROTI MAJU",
        "13/04/2018",
        ("2 X BUN KACANG @12.50", "25.00"),
        ("SUBTOTAL", "25.00"),
        "NET TOTAL",
        "25. 0",
        ("C", "50.00"),
        ("C.", "25.00"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.total is not None and f.total.value == Decimal("25.00")


def test_a_tax_code_column_over_the_items_keeps_the_total_label() -> None:
    """'TAX CODE' heading the item table is not a tax summary: the total below keeps its label
    and wins over the larger tendered amount."""
    rows: Rows = [
        "PASARAYA MAJU SDN BHD",
        ("ITEM QTY PRICE", "TAX CODE"),
        ("ICE CREAM 73ML", "1.60"),
        ("CHOCOLATE BAR", "4.50"),
        ("*TOTAL QTY: 2", "6.10"),
        ("TOTAL INCLUDES GST 0%", "6.10"),
        ("CASH", "20.00"),
        ("CHANGE", "13.90"),
        "GST SUMMARY",
        ("ZRL = 0%", "6.10"),
    ]
    result = extract_fields(lines(rows))
    assert result.fields.total is not None and result.fields.total.value == Decimal("6.10")
    total_line = result.fields.total.lines
    texts = {ln.id: ln.text for ln in lines(rows)}
    assert any(texts[i] == "TOTAL INCLUDES GST 0%" for i in total_line)
