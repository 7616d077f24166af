"""`receipts eval ocr`: every engine reads the same ground-truth line crops; both are printed."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import click

from models.evaluation.ocr import EngineRun, ReceiptCrops, receipt_crops, run_engine
from models.evaluation.sroie import SPLIT_FILE, DatasetError, load_split, samples
from models.ocr import EngineUnavailable, OcrEngine, build_engine
from models.ocr.litert import LiteRTConfig
from models.ocr.tesseract import TesseractConfig

logger = logging.getLogger(__name__)

#: `litert-greedy` is the LiteRT engine without its language model (greedy CTC decoding).
ENGINE_NAMES = ("litert", "litert-greedy", "tesseract")


def engine_for(name: str, model_dir: Path | None = None, threads: int = 1) -> OcrEngine:
    """The reader named in ENGINE_NAMES, reading given crops (EngineUnavailable if it can't)."""
    if name.startswith("litert"):
        # Recognition only: the crops come from the ground-truth boxes, no detector is needed.
        config = LiteRTConfig(
            model_dir=model_dir, require_detector=False, language_model=name == "litert"
        )
        return build_engine(config, threads=threads)
    return build_engine(TesseractConfig(), threads=threads)


def _table(runs: list[EngineRun]) -> str:
    head = f"{'engine':<14} {'version':<22} {'receipts':>8} {'lines':>6} {'CER %':>7} "
    head += f"{'exact %':>8} {'s/receipt':>10}"
    rows = [head]
    for r in runs:
        s = r.summary()
        rows.append(
            f"{r.engine:<14} {r.version[:22]:<22} {r.receipts:>8} {r.score.lines:>6} "
            f"{100 * r.score.cer:>7.2f} {100 * r.score.exact:>8.2f} "
            f"{float(s['seconds_per_receipt']):>10.3f}"
        )
    return "\n".join(rows)


@click.command("ocr")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="SROIE-layout folder with box/, key/ and img/.",
)
@click.option(
    "--engines",
    default="litert,litert-greedy,tesseract",
    show_default=True,
    help=f"Comma-separated engines to compare: {', '.join(ENGINE_NAMES)}.",
)
@click.option(
    "--split",
    "split_name",
    type=click.Choice(["val", "train"]),
    default="val",
    show_default=True,
    help="Which part of the committed split to read.",
)
@click.option(
    "--split-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=SPLIT_FILE,
    show_default=True,
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N receipts only.")
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="LiteRT model folder with manifest.json (default: models/artifacts).",
)
@click.option(
    "--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="Per engine."
)
@click.option("--worst", type=click.IntRange(min=0), default=0, help="Show the N worst lines.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ocr_command(  # noqa: PLR0917
    data: Path,
    engines: str,
    split_name: str,
    split_file: Path,
    limit: int | None,
    model_dir: Path | None,
    threads: int,
    worst: int,
    as_json: bool,
) -> None:
    """Recognizer CER and line exact match (case-insensitive) on ground-truth line boxes."""
    if worst and split_name == "val":
        raise click.UsageError("--worst is for the train split only: keep the val lines unseen")
    names = [n.strip() for n in engines.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ENGINE_NAMES))
    if unknown or not names:
        raise click.UsageError(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(ENGINE_NAMES)}"
        )
    try:
        ids = sorted(load_split(split_file)[split_name])[:limit]
        cases = samples(data, ids)
    except (DatasetError, OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc
    built: list[tuple[str, OcrEngine]] = []
    unavailable: dict[str, str] = {}
    for name in names:
        try:
            built.append((name, engine_for(name, model_dir, threads)))
        except EngineUnavailable as exc:
            unavailable[name] = str(exc)
            click.echo(f"{name}: unavailable: {exc}", err=True)
    if not built:
        raise click.ClickException("no engine could run; see the messages above")
    start = time.perf_counter()
    receipts: list[ReceiptCrops] = [receipt_crops(s) for s in cases]
    logger.info("cut %d receipts' crops in %.1f s", len(receipts), time.perf_counter() - start)
    runs = []
    for name, engine in built:
        logger.info("reading %d receipts with %s", len(receipts), name)
        runs.append(replace(run_engine(engine, receipts, keep_worst=worst), engine=name))
    title = f"SROIE {split_name} split, {len(receipts)} receipts, ground-truth line boxes"
    if as_json:
        out = {
            "data": str(data),
            "split": split_name,
            "receipts": len(receipts),
            "threads": threads,
            "engines": [r.summary() for r in runs],
            "unavailable": unavailable,
        }
        click.echo(json.dumps(out))
        return
    click.echo(f"{title}, {threads} thread(s), case-insensitive")
    click.echo(_table(runs))
    for r in runs:
        for rid, got, want in r.worst:
            click.echo(f"  {r.engine} {rid}: got {got!r} want {want!r}")
