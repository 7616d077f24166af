"""Build OCR lines for synthetic receipts: each row is a left text and an optional right text."""

from __future__ import annotations

from models.receipt import OcrLine

ROW_HEIGHT = 20.0
WIDTH = 400.0


def lines(
    rows: list[str | tuple[str, str]], tall: set[int] | frozenset[int] = frozenset()
) -> list[OcrLine]:
    """One OCR line per text; a tuple puts its second text right-aligned on the same row."""
    out: list[OcrLine] = []
    y = 10.0
    for n, row in enumerate(rows):
        height = 2 * ROW_HEIGHT if n in tall else ROW_HEIGHT
        left, right = (row, None) if isinstance(row, str) else row
        width = 8.0 * len(left)
        out.append(_line(len(out), left, 10.0, y, 10.0 + width, y + height))
        if right is not None:
            rw = 8.0 * len(right)
            out.append(_line(len(out), right, WIDTH - 10.0 - rw, y, WIDTH - 10.0, y + height))
        y += height + 6.0
    return out


def _line(i: int, text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(id=i, text=text, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
