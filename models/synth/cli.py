"""`receipts synth`: write synthetic receipt photos, empty countertops or line crops with labels."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import cv2

from models.synth.generate import generate_empty, generate_receipt, generate_scan
from models.synth.lines import generate_line

logger = logging.getLogger(__name__)


@click.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (created).",
)
@click.option("--count", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--seed", default=0, show_default=True, type=int, help="First seed; image i uses seed + i."
)
@click.option(
    "--kind",
    default="receipts",
    show_default=True,
    type=click.Choice(["receipts", "lines", "empty", "scans"]),
)
@click.option(
    "--size", default="960x1280", show_default=True, help="Photo size WxH (receipts, empty, scans)."
)
@click.option("--height", default=32, show_default=True, type=int, help="Line crop height (lines).")
@click.option(
    "--paper/--no-paper",
    default=False,
    help="Also write the flat (rectified) receipt as NNN.paper.png.",
)
def synth(  # noqa: PLR0917 (click passes options positionally)
    out_dir: Path, count: int, seed: int, kind: str, size: str, height: int, paper: bool
) -> None:
    """Write synthetic data: photos + NNNNNN.json labels, or line crops + labels.jsonl."""
    try:
        width, high = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"{size!r} is not WIDTHxHEIGHT, e.g. 960x1280", param_hint="--size"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "lines":
        with (out_dir / "labels.jsonl").open("a", encoding="utf-8") as labels:
            for i in range(count):
                image, text = generate_line(seed + i, height)
                name = f"{seed + i:07d}.png"
                cv2.imwrite(str(out_dir / name), image)
                labels.write(
                    json.dumps({"file": name, "text": text, "seed": seed + i}, ensure_ascii=False)
                    + "\n"
                )
    else:
        make = {"receipts": generate_receipt, "empty": generate_empty, "scans": generate_scan}[kind]
        for i in range(count):
            sample = make(seed + i, (width, high))
            stem = out_dir / f"{seed + i:07d}"
            cv2.imwrite(str(stem) + ".jpg", sample.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            if paper and sample.paper is not None:
                cv2.imwrite(str(stem) + ".paper.png", sample.paper[..., ::-1])
            stem.with_suffix(".json").write_text(
                sample.label.model_dump_json(indent=1), encoding="utf-8"
            )
    logger.info(
        "wrote %d %s samples to %s (seeds %d..%d)", count, kind, out_dir, seed, seed + count - 1
    )
    click.echo(f"wrote {count} {kind} to {out_dir}")
