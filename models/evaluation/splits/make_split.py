"""Regenerate splits/sroie.json: a seeded shuffle of every SROIE id, 20 % for validation."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20240404
VAL_SHARE = 0.2


def make_split(
    ids: list[str], seed: int = SEED, val_share: float = VAL_SHARE
) -> dict[str, list[str]]:
    """Split sorted ids deterministically into train and val (both returned sorted)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_share)
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}


def main(argv: list[str]) -> None:
    data = Path(argv[1]) if len(argv) > 1 else Path("/work/shared/datasets/sroie-train")
    ids = [p.stem for p in (data / "key").glob("*.json")]
    out = Path(__file__).with_name("sroie.json")
    out.write_text(json.dumps(make_split(ids), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv)
