"""Confidence calibration: the isotonic fit and the committed table."""

from __future__ import annotations

from models.extraction import extract_fields
from models.extraction.calibration import CALIBRATED, Calibration, fit_isotonic, load
from tests.models.extraction.synthetic import lines


def test_isotonic_fit_is_monotone_and_shrunk() -> None:
    pairs = [(0.2, False)] * 8 + [(0.2, True)] * 2 + [(0.5, True)] * 3 + [(0.5, False)] * 3
    pairs += [(0.9, True)] * 20
    steps = fit_isotonic(pairs)
    assert list(steps.values) == sorted(steps.values)
    assert steps(0.1) == steps(0.2) < steps(0.5) < steps(0.95) < 1.0
    assert abs(steps(0.2) - 3 / 12) < 1e-3  # (2 right + 1) / (10 + 2)


def test_tied_scores_are_pooled_before_fitting() -> None:
    # Ties must not be split into a wrong block below and a perfect block above.
    steps = fit_isotonic([(0.9, False)] * 5 + [(0.9, True)] * 5)
    assert steps(0.9) == 0.5


def test_a_violating_order_is_pooled() -> None:
    steps = fit_isotonic([(0.3, True)] * 4 + [(0.6, False)] * 4)
    assert steps(0.3) == steps(0.6) == 0.5


def test_table_round_trip_and_committed_table() -> None:
    table = Calibration({"total": fit_isotonic([(0.1, False), (0.9, True)])}, "test")
    assert Calibration.from_json(table.to_json()) == table
    committed = load()
    assert set(committed.fields) == set(CALIBRATED)
    for steps in committed.fields.values():
        assert list(steps.values) == sorted(steps.values)
        assert all(0.0 < v < 1.0 for v in steps.values)


def test_extract_fields_uses_calibrated_or_raw_confidences() -> None:
    receipt = lines(["SHOP LTD", "1 HIGH STREET", "LONDON SW1A 1AA", ("TOTAL", "5.00")])
    table = Calibration({"total": fit_isotonic([(0.0, False)] * 3 + [(0.0, True)])})
    calibrated = extract_fields(receipt, calibration=table).fields.total
    raw = extract_fields(receipt, calibration=None).fields.total
    assert calibrated is not None and raw is not None
    assert calibrated.confidence == round(2 / 6, 3)
    assert raw.confidence != calibrated.confidence


def test_a_field_is_only_as_sure_as_the_reading_of_its_lines() -> None:
    rows: list[str | tuple[str, str]] = [
        "KEDAI BUKU MAJU SDN BHD",
        "NO 3, JALAN AMAN, 50000 KUALA LUMPUR",
        "DATE: 12/03/2018",
        ("TOTAL", "12.50"),
    ]
    sure = extract_fields(lines(rows)).fields
    shaky_lines = [
        ln.model_copy(update={"confidence": 0.4}) if ln.text.startswith("KEDAI") else ln
        for ln in lines(rows)
    ]
    shaky = extract_fields(shaky_lines).fields
    assert sure.merchant is not None and shaky.merchant is not None
    assert shaky.merchant.value == sure.merchant.value  # the same choice ...
    assert shaky.merchant.confidence < 0.5 * sure.merchant.confidence + 1e-3  # ... less sure
    assert sure.total is not None and shaky.total is not None
    assert shaky.total.confidence == sure.total.confidence  # other fields' lines were read well
