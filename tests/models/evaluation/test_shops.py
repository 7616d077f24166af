"""Shop keys and shop-grouped cross-validation folds."""

from __future__ import annotations

import pytest

from models.evaluation.shops import grouped_folds, shop_groups, shop_key, singletons


def _key(company: str, address: str = "") -> dict[str, str]:
    return {"company": company, "address": address}


def test_the_shop_key_ignores_legal_forms_brackets_and_spelling() -> None:
    assert shop_key("MR D.I.Y. (M) SDN BHD") == shop_key("MR. D.I.Y (KUCHAI) SDN. BHD.")
    assert shop_key("AEON CO. (M) BHD") == shop_key("AEON CO (M) SDN BHD") == "AEON"
    assert shop_key("ONE ONE THREE SEAFOOD RESTAURANT SDN BHD") == "ONEONETHREES"
    assert shop_key("KEDAI A") != shop_key("KEDAI B")


def test_receipts_with_the_same_address_are_one_shop_despite_a_typo_in_the_name() -> None:
    keys = [
        _key("RESTORAN WAN SHENG", "NO.2, JALAN TEMENGGUNG 19/9"),
        _key("RSTORAN WAN SHENG", "NO.2, JALAN TEMENGGUNG 19/9"),
        _key("KEDAI BUKU MAJU", "NO 5, JALAN MAJU"),
        _key("KEDAI BUKU MAJU SDN BHD", "LOT 9, JALAN LAIN"),
        _key("", ""),
    ]
    assert shop_groups(keys) == [0, 0, 1, 1, 2]
    assert singletons(shop_groups(keys)) == [False, False, False, False, True]


def test_no_shop_spans_two_folds_and_the_folds_are_balanced_and_fixed() -> None:
    groups = [0] * 7 + [1] * 3 + [2] * 3 + list(range(3, 12))
    folds = grouped_folds(groups, 4)
    for g in set(groups):
        assert len({f for f, h in zip(folds, groups, strict=True) if h == g}) == 1
    sizes = [folds.count(k) for k in range(4)]
    assert sizes == [7, 5, 5, 5]  # the big shop alone; the rest fill the others evenly
    assert grouped_folds(groups, 4) == folds
    assert grouped_folds(list(groups), 4) == folds


def test_fewer_shops_than_folds_is_refused() -> None:
    with pytest.raises(ValueError, match="2 shops cannot fill 3"):
        grouped_folds([0, 0, 1, 1], 3)
