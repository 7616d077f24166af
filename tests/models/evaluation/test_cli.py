"""`receipts eval fields` on a small SROIE-layout folder written by the test."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from models.evaluation.cli import eval_group
from models.evaluation.scoring import fold_text, key_date, key_total

RECEIPT = """10,10,200,10,200,40,10,40,KEDAI MAKAN ABC SDN BHD
10,50,200,50,200,70,10,70,NO 1, JALAN MAJU,
10,80,200,80,200,100,10,100,43000 KAJANG, SELANGOR
10,110,200,110,200,130,10,130,TEL: 03-1234 5678
10,140,200,140,200,160,10,160,DATE: 05/06/2018 12:30
10,170,100,170,100,190,10,190,TOTAL
300,170,380,170,380,190,300,190,12.50
10,200,100,200,100,220,10,220,CASH
300,200,380,200,380,220,300,220,20.00
10,230,100,230,100,250,10,250,CHANGE
300,230,380,230,380,250,300,250,7.50
"""


def _dataset(tmp_path: Path, total: str) -> tuple[Path, Path]:
    for sub in ("box", "key"):
        (tmp_path / sub).mkdir()
    for i in ("a1", "a2"):
        (tmp_path / "box" / f"{i}.txt").write_text(RECEIPT)
        key = {
            "company": "KEDAI MAKAN ABC SDN BHD",
            "date": "05/06/2018",
            "address": "NO 1, JALAN MAJU, 43000 KAJANG, SELANGOR",
            "total": total,
        }
        (tmp_path / "key" / f"{i}.json").write_text(json.dumps(key))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["a1"], "val": ["a2"]}))
    return tmp_path, split


def test_eval_fields_scores_all_four(tmp_path: Path) -> None:
    data, split = _dataset(tmp_path, "12.50")
    result = CliRunner().invoke(
        eval_group, ["fields", "--data", str(data), "--split-file", str(split), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 1
    assert report["accuracy"] == {"company": 1.0, "date": 1.0, "address": 1.0, "total": 1.0}


def test_eval_fields_counts_a_wrong_total(tmp_path: Path) -> None:
    data, split = _dataset(tmp_path, "RM13.00")
    result = CliRunner().invoke(
        eval_group, ["fields", "--data", str(data), "--split-file", str(split)]
    )
    assert result.exit_code == 0, result.output
    assert "total      0.00 %" in result.output
    assert "mean      75.00 %" in result.output


def test_errors_listing_refused_on_val(tmp_path: Path) -> None:
    data, split = _dataset(tmp_path, "12.50")
    result = CliRunner().invoke(
        eval_group, ["fields", "--data", str(data), "--split-file", str(split), "--errors"]
    )
    assert result.exit_code != 0
    assert "train split only" in result.output


def test_bad_folder_says_what_is_expected(tmp_path: Path) -> None:
    result = CliRunner().invoke(eval_group, ["fields", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "box/ and key/" in result.output


def test_eval_fields_reads_a_receipts_synth_folder(tmp_path: Path) -> None:
    """`receipts synth` output is an evaluation set: its labels' lines and fields as the key."""
    from models.synth.cli import synth

    out = tmp_path / "synth"
    made = CliRunner().invoke(synth, ["--out", str(out), "--count", "4", "--seed", "7000"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(eval_group, ["fields", "--data", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 4
    assert set(report["accuracy"]) == {"company", "date", "address", "total"}
    assert report["accuracy"]["total"] == 1.0  # clean printed lines in any locale
    listed = CliRunner().invoke(eval_group, ["fields", "--data", str(out), "--errors"])
    assert listed.exit_code == 0, listed.output  # no val to protect in a generated set
    # a damaged label is named, not skipped
    first = sorted(out.glob("*.json"))[0]
    first.write_text("{not json")
    broken = CliRunner().invoke(eval_group, ["fields", "--data", str(out)])
    assert broken.exit_code != 0 and first.name in broken.output


def test_scoring_normalisation() -> None:
    assert fold_text("Book Ta .K (Taman Daya) SDN  BHD") == fold_text(
        "BOOK TA.K(TAMAN DAYA) SDN BHD"
    )
    assert key_total("RM 34.80") == key_total("$34.80") == key_total("34.80")
    assert key_date("12-01-19") == key_date("12/01/2019")


def test_train_lines_refuses_a_split_too_small_to_cross_validate(tmp_path: Path) -> None:
    data, split = _dataset(tmp_path, "12.50")
    out = tmp_path / "models.json"
    result = CliRunner().invoke(
        eval_group,
        ["train-lines", "--data", str(data), "--split-file", str(split), "--out", str(out)],
    )
    assert result.exit_code != 0
    assert "too few" in result.output
    assert not out.exists()


def _train_dataset(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """n train receipts (every second one with a wrong total in its key) and one val receipt."""
    for sub in ("box", "key"):
        (tmp_path / sub).mkdir()
    ids = [f"t{i}" for i in range(n)] + ["v0"]
    for k, i in enumerate(ids):
        (tmp_path / "box" / f"{i}.txt").write_text(RECEIPT)
        key = {
            "company": "KEDAI MAKAN ABC SDN BHD",
            "date": "05/06/2018",
            "address": "NO 1, JALAN MAJU, 43000 KAJANG, SELANGOR",
            "total": "12.50" if k % 2 == 0 else "99.00",
        }
        (tmp_path / "key" / f"{i}.json").write_text(json.dumps(key))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ids[:-1], "val": ["v0"]}))
    return tmp_path, split


def test_eval_fields_cross_validates_the_train_split(tmp_path: Path) -> None:
    data, split = _train_dataset(tmp_path, 6)
    for k in range(1, 4):  # four shops: t0, t4 and t5 one; t1, t2 and t3 one each
        key = json.loads((data / "key" / f"t{k}.json").read_text())
        key["address"] = f"LOT {k}, JALAN LAIN"
        (data / "key" / f"t{k}.json").write_text(json.dumps({**key, "company": f"SHOP {k}"}))
    args = ["fields", "--data", str(data), "--split-file", str(split), "--split", "train"]
    result = CliRunner().invoke(eval_group, [*args, "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["folds"] == 3 and report["n"] == 6
    assert report["group_by_shop"] is True and report["shops"] == 4
    assert report["single_shop"]["n"] == 3
    assert report["accuracy"]["company"] == 0.5  # t1 .. t3 are keyed with another name
    assert report["accuracy"]["total"] == 0.5
    assert sum(count for _, _, count, _ in report["deciles"]) == 4 * 6


def test_cross_validation_groups_receipts_by_shop_by_default(tmp_path: Path) -> None:
    data, split = _train_dataset(tmp_path, 6)  # one shop: it cannot fill three folds
    args = ["fields", "--data", str(data), "--split-file", str(split), "--split", "train"]
    grouped = CliRunner().invoke(eval_group, [*args, "--folds", "3", "--json"])
    assert grouped.exit_code != 0 and "--no-group-by-shop" in grouped.output
    plain = CliRunner().invoke(eval_group, [*args, "--folds", "3", "--no-group-by-shop", "--json"])
    assert plain.exit_code == 0, plain.output
    report = json.loads(plain.output)
    assert report["group_by_shop"] is False and report["shops"] == 1
    assert report["single_shop"]["n"] == 0


def test_cross_validation_is_refused_on_val(tmp_path: Path) -> None:
    data, split = _train_dataset(tmp_path, 6)
    result = CliRunner().invoke(
        eval_group, ["fields", "--data", str(data), "--split-file", str(split), "--folds", "3"]
    )
    assert result.exit_code != 0
    assert "--split train" in result.output


def test_calibrate_fits_on_out_of_fold_confidences(tmp_path: Path) -> None:
    data, split = _train_dataset(tmp_path, 6)
    out = tmp_path / "calibration.json"
    args = ["calibrate", "--data", str(data), "--split-file", str(split), "--folds", "3"]
    result = CliRunner().invoke(eval_group, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert "out-of-fold" in table["source"]
    # Half the totals are wrong in the keys: the calibrated total confidence says so.
    assert table["fields"]["total"]["values"][-1] < 0.75
