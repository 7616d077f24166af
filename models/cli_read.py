"""`receipts scan` and `receipts extract`: the read pipeline from the command line.

- ``receipts scan PATH... [--json] [--engine litert|tesseract] [--threads N] [--no-find]`` reads
  receipt images (files, or folders of them) and prints one result per image.
- ``receipts extract BOXFILE... [--json]`` extracts the fields from given OCR lines: SROIE box
  files or JSON lines (see `models.ocr.linefile`).

With ``--json`` each result is one JSON object on its own line: ``file``, ``fields`` (values),
``confidences``, ``needs_review``, ``review_reasons``, ``timings_ms`` (scan adds ``quality``,
``ocr_engine`` and ``image_size``), or ``file`` and ``error`` for an input that could not be
read. The exit status is 1 when any input failed; the others are still read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from models.ocr import ENGINE_TYPES
from models.receipt import Receipt, ReceiptFields

#: What `scan` reads from a folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.option(
    "--engine",
    type=click.Choice(ENGINE_TYPES),
    default="litert",
    show_default=True,
    help="OCR engine: litert (the project's models) or tesseract (the baseline).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="CPU threads for the OCR engine.",
)
@click.option(
    "--no-find",
    is_flag=True,
    help="Don't look for the receipt's outline: the images are already cropped scans.",
)
def scan(paths: tuple[Path, ...], as_json: bool, engine: str, threads: int, no_find: bool) -> None:
    """Read receipt images (files or folders of them) and print their fields."""
    from models.imageio import ImageError, load_image
    from models.ocr import EngineUnavailable, OcrError
    from models.pipeline import PipelineConfig, build_pipeline

    config = PipelineConfig.model_validate(
        {"ocr": {"type": engine}, "threads": threads, "find_receipt": not no_find}
    )
    try:
        pipeline = build_pipeline(config)
    except EngineUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    failed = 0
    for path in _expand(paths):
        try:
            result = pipeline.read(load_image(path))
        except (ImageError, OcrError) as exc:
            failed += 1
            _emit_error(path, exc, as_json)
            continue
        _emit_receipt(path, result.receipt, as_json)
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("boxfiles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def extract(boxfiles: tuple[Path, ...], as_json: bool) -> None:
    """Extract receipt fields from OCR lines (SROIE box files or JSON lines)."""
    from models.extraction import extract_fields
    from models.ocr.linefile import LineFileError, read_line_file

    failed = 0
    for path in boxfiles:
        try:
            lines = read_line_file(path)
        except LineFileError as exc:
            failed += 1
            _emit_error(path, exc, as_json)
            continue
        start = time.perf_counter()
        extraction = extract_fields(lines)
        elapsed = round((time.perf_counter() - start) * 1000, 2)
        values, confidences = field_summary(extraction.fields)
        result = {
            "file": str(path),
            "fields": values,
            "confidences": confidences,
            "needs_review": extraction.needs_review,
            "review_reasons": extraction.review_reasons,
            "timings_ms": {"extract": elapsed},
        }
        _emit(result, as_json)
    if failed:
        raise SystemExit(1)


def field_summary(fields: ReceiptFields) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields as JSON values, and their confidences, keyed by field name; absent fields
    are left out. Taxes and items are lists, their confidences lists in the same order."""
    values: dict[str, Any] = {}
    confidences: dict[str, Any] = {}
    dumped = fields.model_dump(mode="json", exclude_none=True)
    for name, field in dumped.items():
        if isinstance(field, list):
            if field:
                values[name] = [
                    {k: v for k, v in entry.items() if k not in ("confidence", "lines")}
                    for entry in field
                ]
                confidences[name] = [entry["confidence"] for entry in field]
        else:
            values[name] = field["value"]
            confidences[name] = field["confidence"]
    return values, confidences


def _expand(paths: Iterable[Path]) -> Iterable[Path]:
    """Files as given; folders as the images directly in them, sorted by name."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


def _emit_receipt(path: Path, receipt: Receipt, as_json: bool) -> None:
    values, confidences = field_summary(receipt.fields)
    _emit(
        {
            "file": str(path),
            "fields": values,
            "confidences": confidences,
            "needs_review": receipt.needs_review,
            "review_reasons": receipt.review_reasons,
            "quality": receipt.quality.model_dump(mode="json"),
            "ocr_engine": receipt.ocr_engine,
            "image_size": receipt.image_size,
            "timings_ms": receipt.timings_ms,
        },
        as_json,
    )


def _emit_error(path: Path, exc: Exception, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"file": str(path), "error": str(exc)}, ensure_ascii=False))
    else:
        click.echo(f"{path}: ERROR {exc}", err=True)


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(result["file"])
    if not result["fields"]:
        click.echo("  (no fields found)")
    for name, value in result["fields"].items():
        confidence = result["confidences"][name]
        if isinstance(value, list):
            click.echo(f"  {name:<15} {len(value)} entries")
        else:
            click.echo(f"  {name:<15} {value}  ({confidence:.2f})")
    if result["needs_review"]:
        click.echo("  needs review:   " + ("; ".join(result["review_reasons"]) or "yes"))
    timings = ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in result["timings_ms"].items())
    click.echo(f"  timings:        {timings}")
