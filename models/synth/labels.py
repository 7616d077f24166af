"""The ground truth written beside each synthetic image (JSON), as validated models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineLabel(_Strict):
    """One printed text segment."""

    text: str = Field(min_length=1, description="The text as printed.")
    role: str = Field(
        description="Key field it carries ('total', 'date', 'item_name', ...), or ''."
    )
    row: int = Field(ge=0, description="Printed row; segments of one row share it.")
    box: Quad = Field(description="Corners clockwise from top-left in the photo's pixels.")
    paper_box: tuple[float, float, float, float] = Field(
        description="x0, y0, x1, y1 on the flat (rectified) paper."
    )


class ItemLabel(_Strict):
    name: str
    qty: int
    unit_price: str
    amount: str


class FieldsLabel(_Strict):
    """The receipt's key fields; money as decimal strings, date ISO 8601 and as printed."""

    merchant: str
    address: list[str]
    phone: str
    tax_id: str
    date: str
    date_text: str
    time: str
    subtotal: str
    tax: str
    tax_rate: int
    total: str
    total_text: str
    currency: str
    items: list[ItemLabel]
    payment: Literal["cash", "card"]
    card_last4: str | None


class SceneLabel(_Strict):
    """A photo of a countertop, with or without a receipt, or a flatbed scan of one."""

    kind: Literal["receipt", "empty", "scan"]
    seed: int
    width: int
    height: int
    background: str
    corners: Quad | None = Field(
        description="The receipt's corners TL, TR, BR, BL; None when empty."
    )
    others: list[Quad] = Field(default_factory=list, description="Other receipts in the frame.")
    paper_size: tuple[int, int] | None = Field(
        default=None, description="Flat paper width, height."
    )
    locale: str | None = None
    font: str | None = None
    lines: list[LineLabel] = Field(default_factory=list)
    fields: FieldsLabel | None = None
