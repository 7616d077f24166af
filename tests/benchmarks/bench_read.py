"""Whole-receipt read time: the LiteRT models against Tesseract, same images, same process.

Reads the first N receipts of the SROIE validation split (``--limit``) through the full
pipeline (find, rectify, quality, OCR, extract) once per engine, one thread each, and prints
the median and p95 milliseconds per receipt, the median per stage, lines found, the ratio of
the medians, the model files' size and each engine's peak RSS: every engine runs in its own
child process, so its figure is its own (after its first receipt, and after all of them).
Floor from the models issue: a whole read in 300 ms and 250 MB (on the scanner's CPU; this
machine's figures are printed, not asserted).

Run: ``python -m tests.benchmarks.bench_read --limit 40`` or
``pytest -m benchmark tests/benchmarks/bench_read.py -s`` (RM_BENCH_RECEIPTS sets N).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import time
from pathlib import Path

import pytest

from models.evaluation.sroie import load_split
from models.imageio import load_image
from models.litert import load_manifest
from models.ocr import EngineUnavailable, LiteRTConfig, TesseractConfig
from models.ocr.litert import ARTIFACTS
from models.pipeline import PipelineConfig, build_pipeline

SROIE = Path(os.environ.get("RM_SROIE_DIR", "/work/shared/datasets/sroie-train"))
FLOOR_MS = 300.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(engine: str, images: list[Path]) -> dict[str, float]:
    """Median/p95 ms per receipt, median ms per stage and peak RSS for one engine."""
    ocr = LiteRTConfig() if engine == "litert" else TesseractConfig()
    pipeline = build_pipeline(PipelineConfig(ocr=ocr, threads=1))
    pipeline.read(load_image(images[0]))  # warm-up: first call allocates
    first_mb = _peak_mb()
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    lines = 0
    for path in images:
        image = load_image(path)
        t0 = time.perf_counter()
        receipt = pipeline.read(image).receipt
        totals.append((time.perf_counter() - t0) * 1000)
        lines += len(receipt.lines)
        for stage, ms in receipt.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    out = {
        "median_ms": statistics.median(totals),
        "p95_ms": _percentile(totals, 0.95),
        "lines_per_receipt": lines / len(images),
        "rss_first_mb": first_mb,
        "rss_peak_mb": _peak_mb(),
    }
    out |= {f"{k}_ms": statistics.median(v) for k, v in stages.items() if k != "total"}
    return out


def run(limit: int) -> dict[str, dict[str, float]]:
    ids = load_split()["val"][:limit]
    images = [SROIE / "img" / f"{rid}.jpg" for rid in ids]
    results: dict[str, dict[str, float]] = {}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: its own peak RSS
    for engine in ("litert", "tesseract"):
        with context.Pool(1) as pool:
            try:
                results[engine] = pool.apply(measure, (engine, images))
            except EngineUnavailable as exc:
                print(f"{engine}: unavailable ({exc})")
    print(f"\nwhole read of {len(images)} SROIE val receipts, 1 thread, this machine:")
    stages = sorted({k for r in results.values() for k in r if k.endswith("_ms")})
    print(f"{'engine':<10}" + "".join(f"{s:>14}" for s in stages))
    for engine, r in results.items():
        print(f"{engine:<10}" + "".join(f"{r.get(s, float('nan')):>14.1f}" for s in stages))
    if {"litert", "tesseract"} <= results.keys():
        ratio = results["tesseract"]["median_ms"] / results["litert"]["median_ms"]
        print(f"litert is {ratio:.1f}x faster than tesseract (median per receipt)")
        print(f"litert median {results['litert']['median_ms']:.0f} ms vs floor {FLOOR_MS:.0f} ms")
    manifest = load_manifest(ARTIFACTS)
    size = sum((ARTIFACTS / e.file).stat().st_size for e in manifest.models.values())
    print(f"model files: {size / 1e6:.2f} MB ({', '.join(sorted(manifest.models))})")
    for engine, r in results.items():
        print(
            f"{engine} peak RSS: {r['rss_first_mb']:.0f} MB after one receipt, "
            f"{r['rss_peak_mb']:.0f} MB after {len(images)}"
        )
    return results


@pytest.mark.benchmark
def test_read_time_benchmark() -> None:
    if not (SROIE / "img").is_dir():
        pytest.skip(f"SROIE not found at {SROIE}")
    results = run(int(os.environ.get("RM_BENCH_RECEIPTS", "20")))
    assert results, "no engine could run"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=40)
    run(parser.parse_args().limit)
