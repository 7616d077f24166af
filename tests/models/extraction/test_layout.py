"""Reading order of OCR boxes: rows from the top, each left to right."""

from __future__ import annotations

import math

from models.extraction import extract_fields
from models.extraction.layout import build_page
from models.receipt import OcrLine


def line(i: int, text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(id=i, text=text, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)), confidence=0.9)


def test_pieces_of_a_row_read_left_to_right_even_when_the_right_one_sits_higher():
    boxes = [
        line(0, "NO.1, JALAN PERMAS 10/5,", 374, 274, 582, 298),
        line(1, "BANDAR BARU PERMAS JAYA", 578, 275, 785, 294),  # centre 1.5 px higher
        line(2, "81750 JOHOR BAHRU, JOHOR.", 389, 299, 786, 321),
    ]
    page = build_page(boxes)
    assert [ln.id for ln in page.lines] == [0, 1, 2]
    assert [ln.order for ln in page.lines] == [0, 1, 2]


def test_a_small_word_over_the_top_of_a_big_logo_word_is_its_own_row():
    boxes = [
        line(0, "THE", 284, 128, 333, 153),
        line(1, "ROTI", 190, 136, 415, 212),
        line(2, "MAN", 192, 211, 416, 258),
    ]
    assert [ln.text for ln in build_page(boxes).lines] == ["THE", "ROTI", "MAN"]


def test_the_address_of_a_split_row_comes_out_in_printed_order():
    boxes = [
        line(0, "MOONLIGHT CAKE HOUSE SDN BHD", 425, 234, 744, 253),
        line(1, "NO.1, JALAN PERMAS 10/5,", 374, 274, 582, 298),
        line(2, "BANDAR BARU PERMAS JAYA", 578, 275, 785, 294),
        line(3, "81750 JOHOR BAHRU, JOHOR.", 389, 299, 786, 321),
        line(4, "TOTAL 12.00", 380, 500, 780, 520),
    ]
    fields = extract_fields(boxes).fields
    assert fields.address is not None
    assert fields.address.value.startswith("NO.1, JALAN PERMAS 10/5, BANDAR BARU PERMAS JAYA")


def turned(i: int, text: str, cx: float, cy: float, length: float, degrees: float) -> OcrLine:
    """A 24 px high box of a row slanting by `degrees`, as the detector turns it."""
    a = math.radians(degrees)
    ux, uy = math.cos(a) * length / 2, math.sin(a) * length / 2
    nx, ny = -math.sin(a) * 12, math.cos(a) * 12
    box = (
        (cx - ux - nx, cy - uy - ny),
        (cx + ux - nx, cy + uy - ny),
        (cx + ux + nx, cy + uy + ny),
        (cx - ux + nx, cy - uy + ny),
    )
    return OcrLine(id=i, text=text, box=box, confidence=0.9)


def test_rows_slanting_more_than_their_spacing_keep_their_printed_order():
    # 4 degrees over 500 px: each row's upright bounds (59 px) hold its neighbours' centres
    rows = ["LIGHTROOM GALLERY SDN BHD", "NO: 28, JALAN ASTANA 1C,", "BANDAR BUKIT RAJA, 41050"]
    rows.append("KLANG SELANGOR D.E, MALAYSIA")
    slope = math.tan(math.radians(4.0))
    boxes = [turned(i, text, 300 - 20 * i, 100 + 28 * i, 500, 4.0) for i, text in enumerate(rows)]
    boxes.append(turned(4, "12.00", 700, 184 + 420 * slope, 80, 4.0))  # the last row's price
    page = build_page(list(reversed(boxes)))
    assert [ln.id for ln in page.lines] == [0, 1, 2, 3, 4]
    assert page.right_of(page.by_id(3)) == [page.by_id(4)]  # the price is on its row
    address = extract_fields(boxes).fields.address
    assert address is not None
    assert address.value.startswith("NO: 28, JALAN ASTANA 1C, BANDAR BUKIT RAJA, 41050")


def test_on_a_curled_receipt_short_boxes_tilted_apart_still_share_their_row():
    # the label tilts up and the price across from it down (-5 / +5 degrees): following
    # either one's own slope 270 px across the row lands a row away from the other
    boxes = [
        turned(0, "Moms 12%", 52, 444, 72, -5.0),
        turned(1, "77,33", 340, 446, 40, 5.0),
        turned(2, "Att betala", 55, 470, 78, -5.0),
        turned(3, "721,77 kr", 322, 470, 74, 5.0),
    ]
    page = build_page(boxes)
    assert page.right_of(page.by_id(2)) == [page.by_id(3)]
    assert page.right_of(page.by_id(0)) == [page.by_id(1)]
    total = extract_fields(boxes).fields.total
    assert total is not None and str(total.value) == "721.77"


def test_a_turned_box_has_the_font_height_of_its_row_not_its_upright_bounds():
    # 'FIVE' upright and 'STAR CASH & CARRY' turned 1.5 degrees: one printed name, one font
    boxes = [
        line(0, "FIVE", 114, 196, 237, 220),
        turned(1, "STAR CASH & CARRY", 426, 207, 316, 1.5),
        line(2, "(1365663-P)", 253, 230, 418, 254),
        line(3, "G.23 & G.22, PLAZA SERI SETIA,", 114, 270, 567, 294),
        line(4, "NO. 1 JALAN SS 9/1, 47300 PJ, SELANGOR.", 55, 300, 628, 324),
        line(5, "TOTAL 12.00", 380, 500, 780, 524),
    ]
    page = build_page(boxes)
    assert page.by_id(1).height == 24  # its upright bounds are 32 px high
    assert page.by_id(0).same_row(page.by_id(1))
    merchant = extract_fields(boxes).fields.merchant
    assert merchant is not None
    assert merchant.value == "FIVE STAR CASH & CARRY"
