"""The self-test of a release: its sample receipts, read by the pipeline built from its slot.

Each case of the manifest names an image shipped in the artifact and the fields expected from
it. A case passes when every expected field is read with that value: amounts compare as
decimals (``14.6`` = ``14.60``), dates and times as ISO values, text case- and
space-insensitively. The release passes when every case passes; a reader that raises fails its
case with the error. The report goes into the command result (``output.selftest``).

Also a command for agent releases, run in a child process whose ``PYTHONPATH`` starts with the
new release's ``python/``, so the new code itself reads the samples::

    python -m edge_agent.ota.selftest SLOT_DIR < pipeline.json    # exit 0: passed; JSON report
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from edge_agent.reader import Reader
from models.imageio import load_image
from models.receipt import Receipt
from provisioning.release import ReleaseManifest, SelfTestCase

#: Longest text kept from an error message in the report.
MAX_ERROR_CHARS = 300


def _normal_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def _matches(value: Any, expected: str) -> bool:
    if isinstance(value, Decimal):
        try:
            return value == Decimal(expected)
        except InvalidOperation:
            return False
    if isinstance(value, dt.date | dt.time):
        try:
            return value == type(value).fromisoformat(expected)
        except ValueError:
            return False
    return _normal_text(str(value)) == _normal_text(expected)


def check_case(receipt: Receipt, case: SelfTestCase) -> dict[str, dict[str, str | None]]:
    """The mismatched fields of one case: name -> expected and got (None: not read)."""
    mismatches: dict[str, dict[str, str | None]] = {}
    for name, expected in case.expect.items():
        field = getattr(receipt.fields, name)
        value = None if field is None else field.value
        if value is None or not _matches(value, expected):
            mismatches[name] = {"expected": expected, "got": None if value is None else str(value)}
    return mismatches


def run_selftest(reader: Reader, slot_dir: Path, manifest: ReleaseManifest) -> dict[str, Any]:
    """Read every case with `reader`; returns ``{"passed": bool, "cases": [...], "ms": ...}``."""
    started = time.perf_counter()
    cases: list[dict[str, Any]] = []
    for case in manifest.selftest:
        report: dict[str, Any] = {"image": case.image}
        try:
            receipt = reader.read(load_image(slot_dir / case.image)).receipt
        except Exception as exc:
            report.update(passed=False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        else:
            mismatches = check_case(receipt, case)
            report["passed"] = not mismatches
            if mismatches:
                report["mismatches"] = mismatches
        cases.append(report)
    return {
        "passed": all(c["passed"] for c in cases),
        "cases": cases,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def main(argv: list[str]) -> int:
    """Self-test of the release in ``argv[0]`` with the pipeline config given on stdin."""
    from models.pipeline import PipelineConfig, build_pipeline

    slot_dir = Path(argv[0])
    manifest = ReleaseManifest.model_validate_json((slot_dir / "manifest.json").read_bytes())
    config = PipelineConfig.model_validate_json(sys.stdin.read() or "{}")
    report = run_selftest(build_pipeline(config), slot_dir, manifest)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
