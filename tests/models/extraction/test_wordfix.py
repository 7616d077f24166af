"""Repairs of unsure readings against the header lexicon (`wordfix`), and the OCR look-alikes of
legal forms and specks the header rules now read through."""

from __future__ import annotations

import pytest

from models.extraction import extract_fields
from models.extraction.extract import _without_junk
from models.extraction.merchant import clean_name
from models.extraction.wordfix import Lexicon, best_repair, cost, default_lexicon, repair_lines
from models.receipt import OcrLine

LEX = Lexicon.of(["PERINDUSTRIAN", "SELANGOR", "MALAYSIA", "JALAN"], known=["SELANGORKU"])


def _ocr(i: int, text: str, confs: list[float] | None, y: float = 0.0) -> OcrLine:
    return OcrLine(
        id=i,
        text=text,
        box=((0.0, y), (300.0, y), (300.0, y + 20.0), (0.0, y + 20.0)),
        confidence=min(confs) if confs else 1.0,
        char_confidences=confs,
    )


def test_an_unsure_letter_is_repaired_and_a_sure_one_is_not() -> None:
    unsure = [0.99, 0.99, 0.2, 0.99, 0.99, 0.99, 0.99, 0.99]
    found = best_repair("SETANGOR", unsure, LEX)
    assert found is not None and found[0] == "SELANGOR"
    assert found[1] == pytest.approx(0.1)  # T for L: a look-alike, half its confidence
    assert best_repair("SETANGOR", [0.99] * 8, LEX) is None


def test_a_letter_cut_off_is_restored_only_where_the_word_ends_its_line() -> None:
    confs = [0.95] * 12
    assert best_repair("PERINDUSTRIA", confs, LEX, open_end=True) is not None
    assert best_repair("PERINDUSTRIA", confs, LEX) is None


def test_lexicon_known_and_short_words_stay() -> None:
    assert best_repair("SELANGOR", [0.1] * 8, LEX) is None
    assert best_repair("SELANGORKU", [0.1] * 10, LEX) is None
    assert best_repair("JALAM", [0.1] * 5, LEX) is None  # shorter than MIN_LEN


def test_cost_counts_lookalikes_at_half() -> None:
    assert cost("MALAYSLA", [0.4] * 8, "MALAYSIA") == pytest.approx(0.2)
    assert cost("MALAYSXA", [0.4] * 8, "MALAYSIA") == pytest.approx(0.4)


def test_lines_are_repaired_in_the_top_half_only_and_ground_truth_never() -> None:
    confs = [0.99, 0.99, 0.2, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]
    top = _ocr(0, "SETANGOR,", confs, 0.0)
    bottom = _ocr(1, "SETANGOR,", confs, 500.0)
    out = repair_lines([top, bottom], LEX)
    assert out[0].text == "SELANGOR,"
    assert out[0].char_confidences is not None and len(out[0].char_confidences) == 9
    assert out[1].text == "SETANGOR,"
    gt = _ocr(0, "SETANGOR,", None)
    assert repair_lines([gt, bottom], LEX)[0].text == "SETANGOR,"


def test_committed_lexicon_has_train_words_and_known_words() -> None:
    lex = default_lexicon()
    assert {"JALAN", "TAMAN", "SELANGOR", "PERINDUSTRIAN"} <= lex.words
    assert "TOTAL" in lex.known


@pytest.mark.parametrize(
    ("read", "name"),
    [
        ("POPULAR BOOK C0 (M) SDN BHD", "POPULAR BOOK CO (M) SDN BHD"),
        ("POPULAR BOOK CO (M) SDN BH", "POPULAR BOOK CO (M) SDN BHD"),
        ("POPULAR BOOK CO (M) SDN", "POPULAR BOOK CO (M) SDN BHD"),
        ("POPULAR BOOK CO. C M ) SDN BHD", "POPULAR BOOK CO. (M) SDN BHD"),
        ("LIGHT HOUSE SDN BHT", "LIGHT HOUSE SDN BHD"),
        ("SUPER.SEVEN CASH & CARRY SEN BHD", "SUPER.SEVEN CASH & CARRY SDN BHD"),
        ("Light House S0n. Bhd", "Light House Sdn. Bhd"),
        ("KEDAI SBN BHD", "KEDAI SBN BHD"),  # printed so (SROIE train 562)
        ("SENI SEN BHD", "SENI SDN BHD"),
        ("COCO C0FFEE", "COCO C0FFEE"),
        ("C0", "CO"),
    ],
)
def test_legal_forms_are_read_through_lookalikes_and_cut_boxes(read: str, name: str) -> None:
    assert clean_name(read) == name


def test_a_speck_the_recognizer_could_not_read_is_dropped() -> None:
    speck = _ocr(1, "0", [0.04])
    word = _ocr(2, "0", [0.9])
    assert [ln.id for ln in _without_junk([_ocr(0, "POPULAR", [0.99] * 7), speck, word])] == [0, 2]
    assert [ln.id for ln in _without_junk([speck])] == [1]


def test_a_speck_no_longer_splits_the_name() -> None:
    def box(i: int, text: str, x0: float, x1: float, y0: float, y1: float, c: float) -> OcrLine:
        return OcrLine(
            id=i,
            text=text,
            box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)),
            confidence=c,
            char_confidences=[c] * len(text),
        )

    rows = [
        box(0, "POPULAR", 140, 390, 90, 150, 0.99),
        box(1, "0", 385, 430, 99, 132, 0.04),
        box(2, "BOOK", 423, 570, 91, 148, 0.9),
        box(3, "CO (M) SDN BHD", 100, 620, 160, 212, 0.95),
        box(4, "NO 8, JALAN 7/118B, DESA TUN RAZAK", 50, 650, 300, 330, 0.99),
        box(5, "56000 KUALA LUMPUR, MALAYSIA", 100, 600, 336, 369, 0.99),
        box(6, "TOTAL 12.00", 100, 600, 900, 930, 0.99),
    ]
    merchant = extract_fields(rows).fields.merchant
    assert merchant is not None and merchant.value == "POPULAR BOOK CO (M) SDN BHD"
