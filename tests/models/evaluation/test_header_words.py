"""The train-derived lexicon keeps words shared by shops, never one shop's own."""

from __future__ import annotations

from models.evaluation.header_words import header_words, known_words, to_json


def _key(company: str, address: str) -> dict[str, str]:
    return {"company": company, "address": address, "date": "", "total": ""}


KEYS = [
    _key("ZORBLAX TRADING SDN BHD", "1, JALAN MAWAR, 43000 KAJANG"),
    _key("ZORBLAX TRADING SDN BHD", "1, JALAN MAWAR, 43000 KAJANG"),
    _key("QUINTEL HARDWARE", "2, JALAN MELUR, 43000 KAJANG"),
]


def test_words_of_two_shops_are_kept_and_one_shops_name_is_not() -> None:
    words = header_words(KEYS)
    assert {"JALAN", "KAJANG"} <= set(words)
    assert "ZORBLAX" not in words  # two receipts, one shop
    assert "QUINTEL" not in words


def test_known_words_come_from_transcripts_of_two_shops() -> None:
    texts = ["ZORBLAX\nTOTAL 5.00", "ZORBLAX\nTOTAL 6.00", "QUINTEL\nTOTAL 7.00"]
    assert known_words(KEYS, texts) == ["TOTAL"]


def test_file_names_its_source_and_threshold() -> None:
    body = to_json(["JALAN"], ["TOTAL"], "test")
    assert '"min_shops": 2' in body and '"JALAN"' in body and '"TOTAL"' in body
