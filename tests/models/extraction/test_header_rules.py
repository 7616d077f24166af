"""Header and total rules on small synthetic receipts: names, addresses, rounding, sections."""

from __future__ import annotations

from decimal import Decimal

from models.extraction import extract_fields
from tests.models.extraction.synthetic import lines


def test_address_found_past_a_tax_line_and_cut_before_the_phone() -> None:
    f = extract_fields(
        lines(
            [
                "KEDAI BUKU MAJU SDN BHD (123456-A)",
                "GST REG NO: 000123456789",
                "NO 5, JALAN MAJU 3,",
                "43000 KAJANG, SELANGOR, TEL: 03-8736 1234",
                "TAX INVOICE",
                ("TOTAL", "9.90"),
            ]
        )
    ).fields
    assert f.merchant is not None and f.merchant.value == "KEDAI BUKU MAJU SDN BHD"
    assert f.address is not None
    assert f.address.value == "NO 5, JALAN MAJU 3, 43000 KAJANG, SELANGOR"


def test_uk_and_us_addresses_skip_a_branch_line() -> None:
    uk = extract_fields(
        lines(["GREEN GROCER LTD", "Camden branch", "12 High Street", "London NW1 8AB", "VAT 123"])
    ).fields
    assert uk.address is not None and uk.address.value == "12 High Street London NW1 8AB"
    us = extract_fields(
        lines(["CORNER DELI INC", "455 Market Ave", "Portland, OR 97205", ("TOTAL", "4.00")])
    ).fields
    assert us.address is not None and us.address.value == "455 Market Ave Portland, OR 97205"


def test_a_name_split_before_its_bracketed_branch_is_joined() -> None:
    f = extract_fields(
        lines(["PASAR RAYA MAJU", "(SEMENYIH) SDN BHD", "NO 2, JALAN BESAR,", "43500 SEMENYIH"])
    ).fields
    assert f.merchant is not None and f.merchant.value == "PASAR RAYA MAJU (SEMENYIH) SDN BHD"


def test_a_state_alone_is_not_the_name_when_the_name_was_not_read() -> None:
    # the name above the address was lost (a logo the detector missed): the state on the line
    # after the town is still the address's last line, and no name is better than it
    f = extract_fields(
        lines(
            [
                "NO. 42, JALAN PBS 14/11,",
                "TAMAN PERINDUSTRIAN BUKIT SERDANG,",
                "43300 SERI KEMBANGAN,",
                "SELANGOR",
                "TEL: 03-89433143",
                "GST NO: 001663156224",
                "TAX INVOICE",
                "RECEIPT #: CS00040529 DATE: 24/05/2018",
                ("ENERGIZER AA", "22.00"),
                ("TOTAL", "22.00"),
            ]
        )
    ).fields
    assert f.merchant is None or "SELANGOR" not in f.merchant.value
    assert f.address is not None and f.address.value.endswith("43300 SERI KEMBANGAN, SELANGOR")


def test_a_logo_read_as_letters_above_the_address_is_not_the_name() -> None:
    read = lines(
        [
            "HASHA PETROKIOSK",
            "SC SPEEL.",
            "81750 MASAI JOHOR",
            "TELEPHONE: 073000190",
            "GST NO: 000908345344",
            ("TOTAL", "50.00"),
        ],
        tall={1},
    )
    # the recognizer was unsure of the big logo's 'letters'
    read[1] = read[1].model_copy(update={"confidence": 0.52})
    f = extract_fields(read).fields
    assert f.merchant is not None and f.merchant.value == "HASHA PETROKIOSK"


def test_a_tax_number_label_is_not_the_name() -> None:
    f = extract_fields(
        lines(["ABN: 62 247 8221 A49", "25 Apr 2022", "Invoice: 969763", ("Tomato Sauce", "4.20")])
    ).fields
    assert f.merchant is None or "ABN" not in f.merchant.value


def test_item_lines_with_decimal_commas_are_no_address() -> None:
    # the address was not read (a fold in the paper): the items below the phone must not
    # stand in for it, whichever decimal mark their prices have
    f = extract_fields(
        lines(
            [
                "PEKARNA U MOSTU",
                "Tel: +420 224 815 233",
                "2 x 18,90",
                "Pivo 0,5l 37,80",
                "Chleb 3,90",
                "Rohlik 102,00",
                ("CELKEM", "143,70"),
            ]
        )
    ).fields
    assert f.address is None


def test_a_registration_line_is_not_part_of_the_name() -> None:
    f = extract_fields(lines(["ACME (M) SDN BHD", "CO-REG:860671-D", "LOT 1, JALAN KPB 6,"])).fields
    assert f.merchant is not None and f.merchant.value == "ACME (M) SDN BHD"


def test_cash_that_pays_exactly_the_amounts_above_it_is_the_total_when_none_was_read() -> None:
    # the total's own line was misread ('Grand TOTAL A51.30': its 'RM' read as a letter)
    f = extract_fields(
        lines(
            [
                "NASI KANDAR MAJU",
                ("1", "RM12.60"),
                ("1", "RM13.50"),
                ("1", "RM12.60"),
                ("1", "RM12.60"),
                "Grand TOTAL A51.30",
                ("CASH", "RM51.30"),
            ]
        )
    ).fields
    assert f.total is not None and f.total.value == Decimal("51.30")


def test_the_rounded_figure_after_a_rounding_line_is_the_total() -> None:
    f = extract_fields(
        lines(
            [
                "SHOP",
                ("TOTAL INCL. GST", "80.91"),
                ("ROUNDING ADJ", "-0.01"),
                ("AMOUNT TO PAY", "80.90"),
                ("CASH", "100.00"),
                ("CHANGE", "19.10"),
                "GST SUMMARY",
                ("TOTAL", "80.91"),
            ]
        )
    ).fields
    assert f.total is not None and f.total.value == Decimal("80.90")


def test_section_totals_with_a_return_add_up_to_the_total() -> None:
    f = extract_fields(
        lines(
            [
                "PHARMACY",
                ("TOTAL 0% SUPPLIES:", "-7.43"),
                ("TOTAL 6% SUPPLIES (EXCL. GST):", "28.32"),
                ("GST:", "1.69"),
                ("TOTAL 6% SUPPLIES (INC. GST):", "30.01"),
                ("TOTAL PAYABLE:", "22.58"),
            ]
        )
    ).fields
    assert f.total is not None and f.total.value == Decimal("22.58")


def test_a_line_of_trade_words_only_is_not_the_name() -> None:
    f = extract_fields(
        lines(["GOLDEN SPOON", "BISTRO & CAFE", "109, JALAN SS21/1A,", "47400 PETALING JAYA"])
    ).fields
    assert f.merchant is not None and f.merchant.value == "GOLDEN SPOON"


def test_a_short_number_ending_a_name_is_kept_and_a_registration_dropped() -> None:
    f = extract_fields(lines(["LUCKY SEVEN TRADING 777", "NO 14, JALAN PERMAS 4/3,"])).fields
    assert f.merchant is not None and f.merchant.value == "LUCKY SEVEN TRADING 777"
    g = extract_fields(lines(["LUCKY SEVEN TRADING 001904043-H", "NO 14, JALAN PERMAS"])).fields
    assert g.merchant is not None and g.merchant.value == "LUCKY SEVEN TRADING"


def test_a_stamp_above_the_name_is_not_the_name() -> None:
    f = extract_fields(
        lines(["POSTED", "SUNRISE CASH & CARRY", "(1365663-P)", "NO.1 JALAN SS 9/1, 47300 PJ"])
    ).fields
    assert f.merchant is not None and f.merchant.value == "SUNRISE CASH & CARRY"


def test_an_address_with_a_unit_number_and_a_city_split_over_lines_is_found() -> None:
    f = extract_fields(
        lines(
            [
                "BRIGHT LIGHTS PLAZA",
                "SCOOPS SDN BHD (169609-A)",
                "B-12-3, TOWER B, NORTHPOINT OFFICE, MID VALLEY",
                "CITY, NO1, MEDAN SYED PUTRA UTARA KUALA",
                "LUMPUR",
                "GST ID: 001513148416",
            ]
        )
    ).fields
    assert f.address is not None
    assert f.address.value.startswith("B-12-3, TOWER B") and f.address.value.endswith("LUMPUR")


def test_a_speck_read_as_one_letter_beside_the_address_is_left_out() -> None:
    # A mark in the margin, read 'L', sits on the first address row (SROIE train 413).
    f = extract_fields(
        lines(
            [
                "ANN MAJU TRADING SDN BHD",
                ("NO. 135, JALAN BANGI, 43500", "L"),
                "SEMENYIH, SELANGOR",
                "TEL : 03-8723 8214",
                "TAX INVOICE",
                ("TOTAL", "9.90"),
            ]
        )
    ).fields
    assert f.address is not None
    assert f.address.value == "NO. 135, JALAN BANGI, 43500 SEMENYIH, SELANGOR"
    assert 2 not in f.address.lines  # the speck's line id


def test_logo_fragments_above_the_name_do_not_push_the_address_out_of_the_header() -> None:
    # A logo read as a dozen scraps above the name (SROIE train 451): the address's last
    # lines must still count as header lines.
    scraps = ["wMUN", "/", ".s", "Sep", "=", "44", "GAr", "a", "/ 9o62", "Q6>", "* 924"]
    rows: list[str | tuple[str, str]] = [
        *scraps,
        "MAJU HARDWARE (M) SDN BHD",
        "(CO.REG :860671-D)",
        "LOT 1851-A, JALAN KPB 6,",
        "KAWASAN PERINDUSTRIAN BALAKONG,",
        "43300 SERI KEMBANGAN, SELANGOR",
        "(GST ID NO :000306020352)",
        "TAX INVOICE",
        *[(f"ITEM {k}", "1.00") for k in range(20)],
        ("TOTAL", "20.00"),
    ]
    f = extract_fields(lines(rows)).fields
    assert f.address is not None
    assert f.address.value == (
        "LOT 1851-A, JALAN KPB 6, KAWASAN PERINDUSTRIAN BALAKONG, 43300 SERI KEMBANGAN, SELANGOR"
    )
