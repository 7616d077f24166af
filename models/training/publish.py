"""Put an exported model into a model folder (`models/artifacts/` or an OTA slot) with its manifest.

No TensorFlow: reads what an export wrote (the .tflite, `report.json`, `charset.json`), copies
the chosen file and adds or replaces its entry in the folder's `manifest.json`, with the sha256
of the copied file, its input spec, charset, training data and the metrics measured at export.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.litert.manifest import Manifest, ModelEntry, sha256_file, upsert_entry

SROIE_TRAIN = (
    "SROIE 2019 train receipts listed under 'train' in models/evaluation/splits/sroie.json "
    "(CC BY 4.0; Huang et al., ICDAR 2019); never the 'val' ids"
)
SYNTHETIC = "synthetic receipts and lines from models.synth (generated at training time)"


def publish(
    export_dir: Path,
    folder: Path,
    name: str,
    *,
    precision: str = "int8",
    version: str | None = None,
    training_data: list[str] | None = None,
) -> Manifest:
    """Copy `export_dir`'s model `name` (`<name>_<precision>.tflite`) into `folder`, listed.

    The export's `report.json` gives the input spec, charset and metrics; its `models`
    object is keyed by precision. Raises FileNotFoundError naming what the export lacks.
    """
    report_path = export_dir / "report.json"
    source = export_dir / f"{name}_{precision}.tflite"
    for needed in (report_path, source):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: export the run first")
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    measured = report.get("models", {}).get(precision, {})
    metrics = {k: v for k, v in measured.items() if k not in {"file", "sha256", "bytes"}}
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copyfile(source, target)
    stamp = datetime.fromtimestamp(source.stat().st_mtime, UTC).strftime("%Y.%m.%d-%H%M")
    entry = ModelEntry(
        file=target.name,
        version=version or stamp,
        sha256=sha256_file(target),
        bytes=target.stat().st_size,
        precision=precision,
        input=dict(report.get("input", {})),
        charset=report.get("charset"),
        training_data=training_data or [SYNTHETIC, SROIE_TRAIN],
        metrics=metrics,
    )
    return upsert_entry(folder, name, entry)
