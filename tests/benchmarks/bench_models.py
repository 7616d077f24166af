"""The models issue's figures in one run, as one table: LiteRT (ours) against Tesseract.

What is measured, and why: the models issue sets a floor for every model the scanner ships
and asks for one script that prints them together, so the model card quotes a single run
instead of figures gathered from separate commands on different days. Each row is the
measure, its target, the LiteRT figure, the Tesseract baseline where one applies, and whether
LiteRT meets the target:

1. Recognizer, SROIE val ground-truth line crops, case-insensitive (`models.evaluation.ocr`):
   CER (target <= 2.0 %) and line exact match (>= 90 %) for LiteRT with its language model,
   LiteRT greedy (no language model) and Tesseract, all reading the very same crops; seconds
   per receipt (all its crops, one thread).
2. int8 against float CER on SROIE val (within 0.3 points): the shipped manifest's recognizer
   metrics (the float model is not shipped; `--export-report` reads the float figure from the
   export's report.json when that report's int8 file is the shipped one).
3. Text-line detector: F1 at IoU 0.5, with precision and recall, of the engine's text lines
   (`LiteRTEngine.read_lines`: the detector's boxes that read as text) against the SROIE val
   boxes, summed over receipts (>= 0.95), and beside it the F1 of the detector's own boxes
   before reading (`LiteRTEngine.find_lines`); `receipts eval detector`'s scoring.
4. Receipt finder, the one the pipeline uses (the LiteRT finder when models/artifacts has one,
   else the contour finder), on the held-out synthetic countertops of `receipts eval finder`:
   mean IoU (>= 0.95), mean corner error as a share of the diagonal (<= 2 %), receipts missed,
   quads on empty countertops (0).
5. Whole read (find, rectify, quality, detect, recognize, extract), one thread, each engine in
   its own spawned process (`tests.benchmarks.bench_read.measure`): median (<= 300 ms) and p95
   ms per receipt, peak RSS after one receipt and after all (<= 250 MB).
6. Every file listed in models/artifacts/manifest.json together (<= 8 MB); Tesseract's column
   holds its traineddata files.

Times and memory are this machine's (figures, not assertions); whatever else runs on it
(a training job, say) is in them. SROIE comes from RM_SROIE_DIR (default
/work/shared/datasets/sroie-train); without it rows 1, 3 and 5 say so and the others still run.

Run: ``python -m tests.benchmarks.bench_models [--limit N] [--json]`` (``--limit`` takes the
first N val receipts for rows 1, 3 and 5 and shrinks the finder set), or
``pytest -m benchmark tests/benchmarks/bench_models.py -s`` (RM_BENCH_RECEIPTS sets N, 5).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from models.document import ContourFinder, ReceiptFinder
from models.evaluation.detector_cli import score_pages
from models.evaluation.finder_cli import held_out_frames, score_finder
from models.evaluation.ocr import EngineRun, ReceiptCrops, receipt_crops, run_engine
from models.evaluation.ocr_cli import ENGINE_NAMES, engine_for
from models.evaluation.sroie import Sample, load_split, samples
from models.litert import ManifestError, RuntimeUnavailable, load_manifest
from models.ocr import EngineUnavailable, OcrEngine
from models.ocr.litert import ARTIFACTS, LiteRTConfig, LiteRTEngine
from models.ocr.tesseract import TesseractConfig
from tests.benchmarks.bench_read import measure

SROIE = Path(os.environ.get("RM_SROIE_DIR", "/work/shared/datasets/sroie-train"))

#: Targets from the models issue.
CER_MAX = 0.02
EXACT_MIN = 0.90
INT8_GAP_MAX = 0.003
DETECTOR_F1_MIN = 0.95
FINDER_IOU_MIN = 0.95
FINDER_CORNER_MAX = 0.02
READ_MEDIAN_MAX_MS = 300.0
RSS_MAX_MB = 250.0
MODEL_BYTES_MAX = 8_000_000

#: Default sizes: every val receipt for rows 1 and 3, 20 for the whole read (row 5), and the
#: finder set of `receipts eval finder`.
READ_RECEIPTS = 20
FINDER_RECEIPTS = 200
FINDER_EMPTIES = 100

NA = "—"


@dataclass(frozen=True)
class Row:
    """One line of the table; `met` is None where there is no target or no figure."""

    measure: str
    target: str
    litert: str
    tesseract: str = NA
    met: bool | None = None


def _pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f} %"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


# --- 1. recognizer on ground-truth line crops ---------------------------------------------------


def _recognizer_engines() -> dict[str, OcrEngine | str]:
    """The three readers of row 1 by name (`receipts eval ocr`'s), or why one cannot run."""
    out: dict[str, OcrEngine | str] = {}
    for name in ENGINE_NAMES:
        try:
            out[name] = engine_for(name)
        except EngineUnavailable as exc:
            out[name] = f"unavailable ({exc})"
    return out


def recognizer_runs(cases: list[Sample]) -> dict[str, dict[str, Any]]:
    """Each reader's `EngineRun.summary()` on the same crops, or {"error": why}."""
    receipts: list[ReceiptCrops] = [receipt_crops(s) for s in cases]
    out: dict[str, dict[str, Any]] = {}
    for name, engine in _recognizer_engines().items():
        if isinstance(engine, str):
            out[name] = {"error": engine}
            continue
        run: EngineRun = run_engine(engine, receipts)
        out[name] = dict(run.summary())
    return out


def _recognizer_rows(runs: dict[str, dict[str, Any]] | str) -> list[Row]:
    if isinstance(runs, str):
        return [Row("recognizer (SROIE val line crops)", NA, runs, runs)]

    def fig(name: str, key: str, fmt: str) -> str:
        r = runs.get(name, {})
        if "error" in r:
            return str(r["error"])
        return fmt.format(100 * r[key] if key in {"cer", "exact"} else r[key])

    def ok(name: str, key: str, passes: Any) -> bool | None:
        r = runs.get(name, {})
        return None if key not in r else bool(passes(float(r[key])))

    n = next((int(r["receipts"]) for r in runs.values() if "receipts" in r), 0)
    lines = next((int(r["lines"]) for r in runs.values() if "lines" in r), 0)
    where = f"{n} receipts, {lines} lines"
    return [
        Row(
            f"recognizer CER, LM decoding ({where})",
            f"<= {_pct(CER_MAX, 1)}",
            fig("litert", "cer", "{:.2f} %"),
            fig("tesseract", "cer", "{:.2f} %"),
            ok("litert", "cer", lambda v: v <= CER_MAX),
        ),
        Row(
            "recognizer CER, greedy (no LM)",
            f"<= {_pct(CER_MAX, 1)}",
            fig("litert-greedy", "cer", "{:.2f} %"),
            NA,
            ok("litert-greedy", "cer", lambda v: v <= CER_MAX),
        ),
        Row(
            "recognizer line exact match, LM decoding",
            f">= {_pct(EXACT_MIN, 0)}",
            fig("litert", "exact", "{:.2f} %"),
            fig("tesseract", "exact", "{:.2f} %"),
            ok("litert", "exact", lambda v: v >= EXACT_MIN),
        ),
        Row(
            "recognizer line exact match, greedy (no LM)",
            f">= {_pct(EXACT_MIN, 0)}",
            fig("litert-greedy", "exact", "{:.2f} %"),
            NA,
            ok("litert-greedy", "exact", lambda v: v >= EXACT_MIN),
        ),
        Row(
            "recognizer s/receipt, 1 thread",
            NA,
            f"{fig('litert', 'seconds_per_receipt', '{:.3f}')} (LM), "
            f"{fig('litert-greedy', 'seconds_per_receipt', '{:.3f}')} (greedy)",
            fig("tesseract", "seconds_per_receipt", "{:.3f}"),
        ),
    ]


# --- 2. int8 against float ----------------------------------------------------------------------


def _sroie_cer(metrics: dict[str, Any]) -> float | None:
    sroie = metrics.get("sroie_val")
    if isinstance(sroie, dict) and isinstance(sroie.get("cer"), int | float):
        return float(sroie["cer"])
    return None


def quantization_gap(folder: Path, export_report: Path | None) -> dict[str, Any]:
    """int8 and float SROIE val CER of the shipped recognizer, and where each came from.

    The manifest's recognizer `metrics` hold the int8 figure (and a float one if a later export
    records it under `float`); `export_report` is read only when its int8 sha256 is the shipped
    file's, so a figure from another run is never quoted.
    """
    entry = load_manifest(folder).models.get("recognizer")
    if entry is None:
        return {"error": "no recognizer in the manifest"}
    out: dict[str, Any] = {"int8": _sroie_cer(entry.metrics), "float": None, "source": None}
    shipped_float = entry.metrics.get("float")
    if isinstance(shipped_float, dict) and _sroie_cer(shipped_float) is not None:
        out |= {"float": _sroie_cer(shipped_float), "source": "manifest"}
    elif export_report is not None and export_report.is_file():
        report = json.loads(export_report.read_text(encoding="utf-8")).get("models", {})
        if report.get("int8", {}).get("sha256") == entry.sha256:
            out |= {"float": _sroie_cer(report.get("float", {})), "source": str(export_report)}
            out["int8"] = _sroie_cer(report["int8"]) or out["int8"]
        else:
            out["source"] = f"{export_report}: its int8 model is not the shipped one"
    return out


def _gap_row(gap: dict[str, Any]) -> Row:
    measure = "int8 vs float CER, SROIE val (manifest)"
    target = f"within {100 * INT8_GAP_MAX:.1f} pts"
    if "error" in gap:
        return Row(measure, target, str(gap["error"]))
    int8, flt = gap["int8"], gap["float"]
    int8_text = "n/a" if int8 is None else _pct(int8)
    if flt is None or int8 is None:
        return Row(
            measure, target, f"int8 {int8_text}; float n/a (float not shipped; see export report)"
        )
    diff = int8 - flt
    return Row(
        measure,
        target,
        f"int8 {int8_text} vs float {_pct(flt)} ({100 * diff:+.2f} pts)",
        NA,
        abs(diff) <= INT8_GAP_MAX,
    )


# --- 3. text-line detector ----------------------------------------------------------------------


def detector_score(cases: list[Sample]) -> dict[str, float] | str:
    """Precision, recall and F1 at IoU 0.5 of the engine's text lines, and the F1 of the
    detector's boxes before reading, summed over receipts (`receipts eval detector`'s
    scoring)."""
    try:
        engine = LiteRTEngine(LiteRTConfig(), threads=1)
    except EngineUnavailable as exc:
        return f"unavailable ({exc})"
    scores = score_pages(engine, cases, lambda _: None)
    total = scores.lines.score
    return {
        "f1": total.f1,
        "precision": total.precision,
        "recall": total.recall,
        "receipts": float(len(cases)),
        "predicted": float(total.predicted),
        "truth": float(total.truth),
        "detector_f1": scores.detector.score.f1,
    }


def _detector_row(score: dict[str, float] | str) -> Row:
    measure = "text-line detector F1 @ IoU 0.5"
    target = f">= {DETECTOR_F1_MIN:.2f}"
    if isinstance(score, str):
        return Row(measure, target, score)
    return Row(
        f"{measure} ({int(score['receipts'])} receipts)",
        target,
        f"{score['f1']:.3f} (P {score['precision']:.3f}, R {score['recall']:.3f}; "
        f"detector's boxes before reading {score['detector_f1']:.3f})",
        NA,
        score["f1"] >= DETECTOR_F1_MIN,
    )


# --- 4. receipt finder --------------------------------------------------------------------------


def pipeline_finder(folder: Path = ARTIFACTS) -> ReceiptFinder:
    """The finder the read pipeline picks by default (`finder: auto`): the LiteRT finder when
    the model folder has one that runs, else the contour finder."""
    from models.litert.finder import LiteRTFinder

    try:
        return LiteRTFinder(folder, num_threads=1)
    except (ManifestError, RuntimeUnavailable, RuntimeError):
        return ContourFinder()


def finder_scores(receipts: int, empties: int) -> dict[str, float | str]:
    """`receipts eval finder`'s figures for the pipeline's finder, and its name."""
    finder = pipeline_finder()
    frames = held_out_frames(receipts, empties)
    return {"finder": finder.name, **score_finder(finder, frames)}


def _finder_rows(r: dict[str, Any]) -> list[Row]:
    name = f"receipt finder ({r['finder']}, held-out synth)"
    missed, receipts = int(r["missed"]), int(r["receipts"])
    false_quads, empties = int(r["false_quads"]), int(r["empties"])
    return [
        Row(
            f"{name} mean IoU",
            f">= {FINDER_IOU_MIN:.2f}",
            f"{r['mean_iou']:.3f}",
            NA,
            r["mean_iou"] >= FINDER_IOU_MIN,
        ),
        Row(
            f"{name} corner error, % of diagonal",
            f"<= {_pct(FINDER_CORNER_MAX, 0)}",
            _pct(r["mean_corner_error"]),
            NA,
            r["mean_corner_error"] <= FINDER_CORNER_MAX,
        ),
        Row(f"{name} receipts missed", NA, f"{missed}/{receipts}"),
        Row(
            f"{name} quads on empty countertops",
            "0",
            f"{false_quads}/{empties}",
            NA,
            false_quads == 0,
        ),
        Row(f"{name} median ms/frame", NA, f"{r['median_ms']:.1f}"),
    ]


# --- 5. whole read ------------------------------------------------------------------------------


def _vm_hwm_mb() -> float:
    """This process's own peak RSS (VmHWM), which unlike ru_maxrss starts afresh at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(engine: str, images: list[Path]) -> dict[str, float]:
    """`bench_read.measure`, plus VmHWM as a check of its ru_maxrss figure."""
    return measure(engine, images) | {"vm_hwm_mb": _vm_hwm_mb()}


def whole_reads(images: list[Path]) -> dict[str, dict[str, float] | str]:
    """`bench_read.measure` for each engine, each in its own spawned interpreter.

    Run before anything heavy in this process: Linux keeps ru_maxrss across exec, so a child's
    figure would otherwise start at its parent's RSS when it was forked.
    """
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: its own peak RSS
    out: dict[str, dict[str, float] | str] = {}
    for engine in ("litert", "tesseract"):
        with context.Pool(1) as pool:
            try:
                out[engine] = pool.apply(_measure, (engine, images))
            except EngineUnavailable as exc:
                out[engine] = f"unavailable ({exc})"
    return out


def _read_rows(reads: dict[str, dict[str, float] | str] | str, n: int) -> list[Row]:
    where = f"({n} receipts, 1 thread)"
    if isinstance(reads, str):
        return [Row(f"whole read {where}", NA, reads, reads)]

    def fig(engine: str, key: str, fmt: str) -> str:
        r = reads.get(engine)
        return r if isinstance(r, str) else fmt.format(r[key]) if r else NA

    def ok(key: str, limit: float) -> bool | None:
        r = reads.get("litert")
        return None if not isinstance(r, dict) else r[key] <= limit

    return [
        Row(
            f"whole read median ms/receipt {where}",
            f"<= {READ_MEDIAN_MAX_MS:.0f} ms",
            fig("litert", "median_ms", "{:.0f} ms"),
            fig("tesseract", "median_ms", "{:.0f} ms"),
            ok("median_ms", READ_MEDIAN_MAX_MS),
        ),
        Row(
            "whole read p95 ms/receipt",
            NA,
            fig("litert", "p95_ms", "{:.0f} ms"),
            fig("tesseract", "p95_ms", "{:.0f} ms"),
        ),
        Row(
            "peak RSS after one receipt",
            f"<= {RSS_MAX_MB:.0f} MB",
            fig("litert", "rss_first_mb", "{:.0f} MB"),
            fig("tesseract", "rss_first_mb", "{:.0f} MB"),
            ok("rss_first_mb", RSS_MAX_MB),
        ),
        Row(
            f"peak RSS after all {n}",
            f"<= {RSS_MAX_MB:.0f} MB",
            fig("litert", "rss_peak_mb", "{:.0f} MB"),
            fig("tesseract", "rss_peak_mb", "{:.0f} MB"),
            ok("rss_peak_mb", RSS_MAX_MB),
        ),
    ]


# --- 6. model files -----------------------------------------------------------------------------


def model_bytes(folder: Path = ARTIFACTS) -> dict[str, int]:
    """Size in bytes of every file listed in the folder's manifest, by model name."""
    manifest = load_manifest(folder)
    return {name: (folder / e.file).stat().st_size for name, e in manifest.models.items()}


def tesseract_bytes(lang: str | None = None) -> int | None:
    """Size of Tesseract's traineddata for its configured languages, or None if not found."""
    lang = lang or TesseractConfig().lang
    try:
        done = subprocess.run(
            ["tesseract", "--list-langs"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'"([^"]+)"', done.stdout + done.stderr)
    if not found:
        return None
    files = [Path(found.group(1)) / f"{code}.traineddata" for code in lang.split("+")]
    return sum(f.stat().st_size for f in files) if all(f.is_file() for f in files) else None


def _size_row(sizes: dict[str, int], tess: int | None) -> Row:
    total = sum(sizes.values())
    return Row(
        f"model files together ({', '.join(sorted(sizes))})",
        f"<= {MODEL_BYTES_MAX / 1e6:.0f} MB",
        f"{total / 1e6:.2f} MB",
        NA if tess is None else f"{tess / 1e6:.2f} MB (traineddata)",
        total <= MODEL_BYTES_MAX,
    )


# --- the run ------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table with a header and a rule."""
    head = ("measure", "target", "LiteRT (ours)", "Tesseract (baseline)", "met?")
    cells = [head, *[(r.measure, r.target, r.litert, r.tesseract, _met(r.met)) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def run(limit: int | None = None, export_report: Path | None = None) -> dict[str, Any]:
    """Measure everything; the figures and the table's rows (see the module docstring)."""
    started = time.perf_counter()
    figures: dict[str, Any] = {"sroie": str(SROIE), "limit": limit}
    rows: list[Row] = []
    have_sroie = (SROIE / "img").is_dir() and (SROIE / "box").is_dir()
    val_ids = sorted(load_split()["val"])
    cases = samples(SROIE, val_ids[:limit]) if have_sroie else []
    absent = f"skipped: no SROIE at {SROIE} (RM_SROIE_DIR)"

    # The whole read first, while this process is small (see `whole_reads`); printed as row 5.
    read_ids = val_ids[: READ_RECEIPTS if limit is None else limit]
    images = [SROIE / "img" / f"{rid}.jpg" for rid in read_ids]
    reads: dict[str, dict[str, float] | str] | str = whole_reads(images) if cases else absent
    figures["whole_read"] = reads

    recognizer: dict[str, dict[str, Any]] | str = recognizer_runs(cases) if cases else absent
    figures["recognizer"] = recognizer
    rows += _recognizer_rows(recognizer)

    gap = quantization_gap(ARTIFACTS, export_report)
    figures["int8_vs_float"] = gap
    rows.append(_gap_row(gap))

    detector = detector_score(cases) if cases else absent
    figures["detector"] = detector
    rows.append(_detector_row(detector))

    n_finder = FINDER_RECEIPTS if limit is None else min(FINDER_RECEIPTS, limit)
    n_empty = FINDER_EMPTIES if limit is None else min(FINDER_EMPTIES, max(1, limit // 2))
    finder = finder_scores(n_finder, n_empty)
    figures["finder"] = finder
    rows += _finder_rows(finder)
    rows += _read_rows(reads, len(images))

    sizes, tess = model_bytes(), tesseract_bytes()
    figures["model_bytes"] = sizes | {"total": sum(sizes.values()), "tesseract": tess}
    rows.append(_size_row(sizes, tess))

    figures["seconds"] = round(time.perf_counter() - started, 1)
    return {"figures": figures, "rows": [asdict(r) for r in rows], "table": table(rows)}


@pytest.mark.benchmark
def test_models_benchmark() -> None:
    if not (SROIE / "img").is_dir():
        pytest.skip(f"SROIE not found at {SROIE}")
    out = run(int(os.environ.get("RM_BENCH_RECEIPTS", "5")))
    print("\n" + out["table"])
    assert out["rows"], "nothing was measured"


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The models issue's figures as one table (see this module's docstring)."
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N SROIE val receipts for the recognizer, detector and whole read "
        "(default: all for the first two, 20 for the read); also shrinks the finder set",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--export-report",
        type=Path,
        default=None,
        help="an export's report.json: its float CER is quoted when its int8 file is shipped",
    )
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    out = run(args.limit, args.export_report)
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return
    print(
        f"models benchmark: SROIE {out['figures']['sroie']}, this machine, "
        f"{out['figures']['seconds']} s"
    )
    print(out["table"])


if __name__ == "__main__":
    main()
