"""Header rules found on shops the extractor had not seen (issue 4): made-up shops, real shapes."""

from __future__ import annotations

from models.extraction import extract_fields
from tests.models.extraction.synthetic import lines


def _header(rows: list[str | tuple[str, str]]) -> tuple[str | None, str | None]:
    f = extract_fields(lines(rows)).fields
    return (f.merchant.value if f.merchant else None, f.address.value if f.address else None)


def test_a_logo_stacked_one_word_per_line_is_one_name() -> None:
    name, _ = _header(
        ["THE", "BLUE", "KETTLE", "CAFE", "12, JALAN MAWAR 3, TAMAN SRI", "TEL: 03-1234 5678"]
    )
    assert name == "THE BLUE KETTLE CAFE"


def test_two_stacked_words_are_left_to_the_other_rules() -> None:
    name, _ = _header(["SUNNY", "MART", "12, JALAN MAWAR 3,", "43000 KAJANG"])
    assert name in {"SUNNY", "MART"}


def test_a_name_with_its_bracketed_number_wins_over_a_branch_line_below() -> None:
    name, _ = _header(
        [
            "BRIGHT VOLT MALAYSIA (123456-A)",
            "LOT LG 2, KOTA PARADE",
            "NO.5, JALAN SS2/1",
            "47500 SUBANG JAYA, SELANGOR",
            "GST REG. NO. 001234567890",
            "BRIGHT VOLT KOTA PARADE",
            "TEL NO.: 03-7722 1000",
        ]
    )
    assert name == "BRIGHT VOLT MALAYSIA"


def test_the_line_on_top_of_the_address_beats_a_bigger_line_above() -> None:
    f = extract_fields(
        lines(
            [
                "LEE AH KOW",
                "MAWAR GIFT & HOME",
                "27,JALAN MAWAR 13,",
                "TAMAN MAWAR JAYA,",
                "81100 JOHOR BAHRU,JOHOR.",
                "TEL:07-3500000",
            ],
            tall={0},
        )
    ).fields
    assert f.merchant is not None and f.merchant.value == "MAWAR GIFT & HOME"


def test_an_outlet_after_the_name_that_the_address_repeats_is_dropped() -> None:
    name, _ = _header(
        [
            "NINE GRAMS COFFEE CO. THE LAKE MALL",
            "F.K06, FIRST FLOOR, THE LAKE MALL,",
            "LINGKARAN SYED PUTRA,",
            "59200 KUALA LUMPUR.",
        ]
    )
    assert name == "NINE GRAMS COFFEE CO"


def test_a_numbered_branch_title_is_not_part_of_the_address() -> None:
    _, address = _header(
        [
            "TAX INVOICE",
            "FUELCO PERMAI INDAH 2",
            "LOT PTD 1010",
            "JALAN PERMAI 10/10",
            "81750 MASAI, JOHOR",
            "SUN FUEL ENTERPRISE",
            "CO. REG. NO: 001011128-T",
        ]
    )
    assert address == "LOT PTD 1010 JALAN PERMAI 10/10 81750 MASAI, JOHOR"


def test_a_mall_line_after_a_complete_address_is_dropped() -> None:
    _, address = _header(
        [
            "BOOKWORM CO. (M) SDN BHD",
            "(CO. NO. 113825-W)",
            "NO 8, JALAN 7/118B, DESA TUN RAZAK",
            "56000 KUALA LUMPUR, MALAYSIA",
            "SUNWAY GRAND MALL",
            "TEL : 03-8070 9188",
        ]
    )
    assert address == "NO 8, JALAN 7/118B, DESA TUN RAZAK 56000 KUALA LUMPUR, MALAYSIA"


def test_a_street_word_misread_by_one_letter_still_counts() -> None:
    _, address = _header(
        [
            "GOLDEN SPOON RESTAURANTS SDN BHD",
            "(65351-M)",
            "LEVEL 6, BANGUNAN TH, DAMANSARA UPTOWN3",
            "NO.3, JALAN SS21/39, 47400 PETALING JAYA",
            "SETANGOR",
            "(GST ID NO: 000504664064)",
        ]
    )
    assert address is not None and address.endswith("PETALING JAYA SELANGOR")


def test_an_item_named_like_a_street_below_the_name_is_not_the_address() -> None:
    _, address = _header(
        [
            "REST AND SERVICE AREA",
            "LOT R1, KWS REHAT & RAWAT ARAH UTARA,",
            "SIMPANG AMPAT, LEBUHRAYA UTARA SELATAN.,",
            "84600,PAGOH,JOHOR",
            "NEWSCARELINE : 1800 88 1231",
            "NEWS RETAIL SB(306295-X)",
            "TAX REG ID CBP 000709361664",
            "DISC",
            "AMT",
            "JALAN JALAN",
        ]
    )
    assert address is not None and address.startswith("LOT R1")


def test_a_full_stop_ends_the_address_before_the_first_item() -> None:
    _, address = _header(
        [
            "PERNIAGAAN SERI RIA",
            "GST:001662431232 1210644T",
            "TAX INVOICE",
            "NO7,JLN BESAR,SHAH ALAM.",
            '27" T.S BASIN BESAR',
            ("400002", "21.32"),
        ]
    )
    assert address == "NO7,JLN BESAR,SHAH ALAM."


def test_a_french_motorway_is_a_street() -> None:
    name, address = _header(
        ["RELAIS DU LAC", "AUTOROUTE RABAT MEKNES", "15000 KHEMISSET", "TEL. : 05.22.95.66.66"]
    )
    assert (name, address) == ("RELAIS DU LAC", "AUTOROUTE RABAT MEKNES 15000 KHEMISSET")
