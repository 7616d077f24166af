"""The header rules on OCR output as our own engine gives it: mixed case, look-alike misreads."""

from __future__ import annotations

import datetime as dt

import pytest

from models.extraction import extract_fields
from models.extraction.merchant import clean_name
from models.extraction.normalize import ocr_clean
from tests.models.extraction.synthetic import lines

_RECEIPT = [
    "GARDEN BAKERIES (KL) SDN BHD (139386 X)",
    "LOT 3, JALAN PELABUR 23/1,",
    "40300 SHAH ALAM, SELANGOR.",
    "TEL: 03-5542 3228 FAX: 03-5541 9766",
    "GST ID NO: 000453677056",
    "INVOICE DATE: 05/05/2018",
]


def _header(rows: list[str]) -> tuple[str | None, str | None]:
    f = extract_fields(lines(list(rows))).fields
    return (f.merchant.value if f.merchant else None, f.address.value if f.address else None)


@pytest.mark.parametrize("case", [str.upper, str.title, str.lower])
def test_the_header_reads_the_same_in_any_letter_case(case: object) -> None:
    assert callable(case)
    name, address = _header([case(r) for r in _RECEIPT])
    assert name is not None and address is not None
    assert name.upper() == "GARDEN BAKERIES (KL) SDN BHD"
    assert address.upper() == "LOT 3, JALAN PELABUR 23/1, 40300 SHAH ALAM, SELANGOR."


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Tri Shaas Sdn Bhd (728515-m)", "Tri Shaas Sdn Bhd"),
        ("mr. d.i.y. (m) sdn bhd co-reg:860671-d", "mr. d.i.y. (m) sdn bhd"),
        ("Book Ta .K(Taman Daya) Sdn Bnd", "Book Ta .K(Taman Daya) Sdn Bhd"),
        ("GARDEN BAKERIES (KL) SDN BHD (I39386-X)", "GARDEN BAKERIES (KL) SDN BHD"),
        ("FOUR QUARTERS SDN BHD (107 69-P)", "FOUR QUARTERS SDN BHD"),  # a space read inside
        ("MOONLIGHT CAKE HOUSE SDN BHD BOZ7Z5-U", "MOONLIGHT CAKE HOUSE SDN BHD"),  # 807275-U
        ("GOOD LUCK-A", "GOOD LUCK-A"),  # a word before a hyphen and a letter is no number
        ("RESTORAN 88 (12)", "RESTORAN 88 (12)"),  # two digits in brackets are not a number
    ],
)
def test_registration_numbers_are_cut_in_any_case_and_through_misreads(
    text: str, name: str
) -> None:
    assert clean_name(text) == name


def test_misread_stop_lines_still_end_the_address() -> None:
    """'G5T' and a phone number with an O for a 0 are not part of the address."""
    _, address = _header(
        [
            "KEDAI BATERI MAJU",
            "NO 1&3, JALAN WANGSA DELIMA 12,",
            "53300 KUALA LUMPUR",
            "O3-41318972",
            "G5T REG: 001658445824",
        ]
    )
    assert address == "NO 1&3, JALAN WANGSA DELIMA 12, 53300 KUALA LUMPUR"


@pytest.mark.parametrize(
    "street", ["Prinsengracht 93", "Bahnhofstraße 15", "GARTENWEG 45", "Kerkstraat 29"]
)
def test_a_compound_street_word_starts_the_address_not_a_branch_name(street: str) -> None:
    name, address = _header(["Supermarkt Rossi", street, "1012 AB Amsterdam", "Tel: 020-2234190"])
    assert name == "Supermarkt Rossi"
    assert address == f"{street} 1012 AB Amsterdam"


@pytest.mark.parametrize(
    ("street", "town"),
    [
        ("Algade 45", "9000 Aalborg"),
        ("Masarykova 84", "110 00 Praha 1"),
        ("Strøget 5", "1620 København V"),
        ("Rua Augusta 87", "1100-048 Lisboa"),
        ("BROADWAY 63", "BOSTON, MA"),
    ],
)
def test_a_street_without_a_street_word_is_known_by_the_town_under_it(
    street: str, town: str
) -> None:
    """'Algade 45' could be a branch name and its number ('BHPETROL PERMAS JAYA 2'), but the
    postcode or the US city and state on the next line make it the street."""
    name, address = _header(["Kiosk Dupont", street, town, "Tel: 98 12 34 56"])
    assert name == "Kiosk Dupont"
    assert address == f"{street} {town}"


def test_a_lower_case_city_and_state_is_not_a_company() -> None:
    """'denver, co': 'co' is Colorado here, not a legal form."""
    name, address = _header(["deli golden star", "broadway 188", "denver, co", "ein: 74-7045873"])
    assert name == "deli golden star"
    assert address == "broadway 188 denver, co"


def test_a_branch_number_before_the_street_stays_out_of_the_address() -> None:
    _, address = _header(
        ["BHPETROL PERMAS JAYA 2", "NO 2, JALAN PERMAS 10", "81750 MASAI, JOHOR", "TEL: 07-3881234"]
    )
    assert address == "NO 2, JALAN PERMAS 10 81750 MASAI, JOHOR"


@pytest.mark.parametrize(
    "tax", ["BTW nr: NL614256521801", "B1 nr: NL614256521801", "NIP 5261040828"]
)
def test_a_vat_number_ends_the_address_whatever_its_label_reads_as(tax: str) -> None:
    _, address = _header(["Rossi Supermarkt", "27 Dorpsstraat", "2511 Den Haag", tax])
    assert address == "27 Dorpsstraat 2511 Den Haag"


def test_an_address_line_is_not_taken_for_an_unread_name() -> None:
    """The logo with the name was not read: the name is missing, the address stays whole."""
    name, address = _header(
        [
            "* (CO REG :860671-D)",
            "LOT 1851-A & 1851-B, JALAN KPB 6,",
            "KAWASAN PERINDUSTRIAN BALAKONG",
            "43300 SERI KEMBANGAN, SELANGOR",
            "(GST ID NO :000306020352)",
        ]
    )
    assert address == (
        "LOT 1851-A & 1851-B, JALAN KPB 6, KAWASAN PERINDUSTRIAN BALAKONG "
        "43300 SERI KEMBANGAN, SELANGOR"
    )
    assert name is None or "KAWASAN" not in name


@pytest.mark.parametrize(
    "phone",
    [
        "T 012-9719498",  # 'TEL:' read as 'T'
        "03-8051 9514k",  # a speck after it read as a letter
        "+60 3-8051 9514",
    ],
)
def test_a_phone_number_in_ocr_debris_ends_the_address(phone: str) -> None:
    _, address = _header(
        [
            "THAI DELICIOUS RESTAURANT",
            "NO.22 JALAN PUTERI 2/4",
            "BANDAR PUTERI",
            "47100 PUCHONG, SELANGOR",
            phone,
        ]
    )
    assert address == "NO.22 JALAN PUTERI 2/4 BANDAR PUTERI 47100 PUCHONG, SELANGOR"


@pytest.mark.parametrize("reg", ["000965911-P", "000965911.p", "000965911 - P"])
def test_a_line_ending_in_a_registration_number_is_not_the_address(reg: str) -> None:
    """A logo read as scraps leaves the name's last word on the line of its registration
    number; that line is the name's, not the first line of the address (its hyphen misread
    as a point, or spaced, too)."""
    _, address = _header(
        [
            "RATE",
            "MAN",
            f"BAKERY {reg}",
            "117, JALAN RADIN BAGUS, SRI PETALING",
            "TEL:03-9054 3785",
        ]
    )
    assert address == "117, JALAN RADIN BAGUS, SRI PETALING"


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("G5T REG NO", "GST REG NO"),
        ("M0BILE : +6O12-918 7937", "MOBILE : +6012-918 7937"),
        ("(I39386-X)", "(139386-X)"),
        ("CO-REG:860671-D", "CO-REG:860671-D"),  # a check letter stays a letter
        ("(1219716T)", "(1219716T)"),
        ("JALAN SS21/39", "JALAN SS21/39"),  # a code is not a misread word
        ("1ST FLOOR", "1ST FLOOR"),
    ],
)
def test_ocr_clean_undoes_look_alikes_and_keeps_the_length(text: str, clean: str) -> None:
    assert ocr_clean(text) == clean
    assert len(ocr_clean(text)) == len(text)


def test_a_year_glued_to_the_time_is_still_a_date() -> None:
    """OCR lost the space between date and time: 'DATE : 5/3/201822:52:33'."""
    f = extract_fields(lines(["KEDAI MAJU", "DATE : 5/3/201822:52:33", ("TOTAL", "9.00")])).fields
    assert f.date is not None and f.date.value == dt.date(2018, 3, 5)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("TEO HENG STATIONERY 8 BOOKS", "TEO HENG STATIONERY & BOOKS"),
        ("Teo Heng Stationery B Books", "Teo Heng Stationery & Books"),
        ("KEDAI 8 8 MART", "KEDAI 8 8 MART"),  # a number in the name stays
        ("PLAN B", "PLAN B"),
    ],
)
def test_an_ampersand_read_as_8_or_b_between_words_is_restored(text: str, name: str) -> None:
    assert clean_name(text) == name
