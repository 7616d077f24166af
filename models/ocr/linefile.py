"""OCR lines stored in files: SROIE box files and the project's JSON lines, read to `OcrLine`s.

- SROIE: one line per row, ``x1,y1,x2,y2,x3,y3,x4,y4,text``, corners clockwise from top-left;
  the text may itself contain commas, so a row is split on its first eight commas only.
- JSON lines: one object per row, ``{"text": ..., "box": [[x, y] x4], "confidence": ...}``;
  ``confidence`` is optional (1.0), and so is ``id`` (the row's position).

`read_line_file` tells the two apart by the first non-blank row: ``{`` starts JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from models.receipt import OcrLine


class LineFileError(ValueError):
    """A line file that can't be parsed; the message names the file and the row."""


def read_line_file(path: Path) -> list[OcrLine]:
    """The OCR lines of a SROIE box file or a JSON-lines file (UTF-8, BOM tolerated)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LineFileError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise LineFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    first = next((row.lstrip() for row in text.splitlines() if row.strip()), "")
    parse = parse_json_lines if first.startswith("{") else parse_sroie_boxes
    return parse(text, source=str(path))


def parse_sroie_boxes(text: str, *, source: str = "box file") -> list[OcrLine]:
    """Lines of a SROIE box file; blank rows are skipped."""
    lines: list[OcrLine] = []
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        parts = row.split(",", 8)
        if len(parts) != 9:
            raise LineFileError(
                f"{source}, row {number}: expected 'x1,y1,x2,y2,x3,y3,x4,y4,text', got {row!r}"
            )
        try:
            coords = [float(v) for v in parts[:8]]
        except ValueError:
            raise LineFileError(
                f"{source}, row {number}: the first eight values must be numbers: {row!r}"
            ) from None
        box = (
            (coords[0], coords[1]),
            (coords[2], coords[3]),
            (coords[4], coords[5]),
            (coords[6], coords[7]),
        )
        lines.append(OcrLine(id=len(lines), text=parts[8].strip(), box=box))
    return lines


def parse_json_lines(text: str, *, source: str = "JSON lines") -> list[OcrLine]:
    """Lines of a JSON-lines file; blank rows are skipped, ids default to the position."""
    lines: list[OcrLine] = []
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        try:
            obj = json.loads(row)
            if not isinstance(obj, dict):
                raise TypeError(f"expected an object, got {type(obj).__name__}")
            obj.setdefault("id", len(lines))
            lines.append(OcrLine.model_validate(obj))
        except (json.JSONDecodeError, TypeError) as exc:
            raise LineFileError(f"{source}, row {number}: not a JSON object: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
            )
            raise LineFileError(f"{source}, row {number}: {problems}") from None
    return lines
