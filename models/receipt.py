"""The structured receipt: what reading one image produces, on the scanner and on the server.

This is the single definition of a read receipt. The MQTT `receipt` payload (`models.protocol`)
carries it, the server stores it, the API serves it. Every extracted field carries its value, a
confidence in [0, 1] and the ids of the OCR lines it came from, so the dashboard can highlight
the evidence and an accountant can see how sure the reader was.

Money is `Decimal` (serialised as a string, never a float); dates are ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Confidence = Annotated[float, Field(ge=0.0, le=1.0, description="Confidence in [0, 1].")]
Point = tuple[float, float]


class _Strict(BaseModel):
    """Base for the receipt's parts: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OcrLine(_Strict):
    """One text line read from the (rectified) receipt image."""

    id: int = Field(ge=0, description="Line id, unique within the receipt; fields refer to it.")
    text: str = Field(description="The text as read.")
    box: tuple[Point, Point, Point, Point] = Field(
        description="Corners clockwise from top-left, in pixels of the rectified image."
    )
    confidence: Confidence = 1.0
    char_confidences: list[float] | None = Field(
        default=None, description="Per-character confidences, where the engine gives them."
    )


class _FieldBase(_Strict):
    confidence: Confidence = Field(description="How sure the extractor is of the value.")
    lines: list[int] = Field(default_factory=list, description="Ids of the OCR lines it came from.")


class TextField(_FieldBase):
    value: str


class MoneyField(_FieldBase):
    value: Decimal = Field(description="Amount in the receipt's currency, as printed.")


class DateField(_FieldBase):
    value: dt.date


class TimeField(_FieldBase):
    value: dt.time


class TaxLine(_Strict):
    """One tax on the receipt (a receipt may carry several rates)."""

    label: str | None = Field(default=None, description="Tax name as printed, e.g. 'VAT', 'GST'.")
    rate: Decimal | None = Field(default=None, description="Rate in percent, e.g. 20 for 20 %.")
    amount: Decimal
    confidence: Confidence = 0.5
    lines: list[int] = Field(default_factory=list)


class LineItem(_Strict):
    description: str
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    amount: Decimal | None = None
    confidence: Confidence = 0.5
    lines: list[int] = Field(default_factory=list)


class ReceiptFields(_Strict):
    """Everything a bookkeeper needs from a receipt. Absent means not found."""

    merchant: TextField | None = None
    address: TextField | None = None
    phone: TextField | None = None
    tax_id: TextField | None = Field(default=None, description="GST/VAT/ABN/ROC number.")
    receipt_number: TextField | None = None
    date: DateField | None = None
    time: TimeField | None = None
    currency: TextField | None = Field(default=None, description="ISO 4217 code.")
    subtotal: MoneyField | None = None
    taxes: list[TaxLine] = Field(default_factory=list)
    tip: MoneyField | None = None
    discount: MoneyField | None = None
    rounding: MoneyField | None = None
    total: MoneyField | None = None
    tendered: MoneyField | None = None
    change: MoneyField | None = None
    payment_method: TextField | None = None
    card_brand: TextField | None = None
    card_last4: TextField | None = None
    category: TextField | None = None
    items: list[LineItem] = Field(default_factory=list)

    @field_validator("card_last4")
    @classmethod
    def _only_last_four(cls, v: TextField | None) -> TextField | None:
        """Never keep more of a card number than its last four digits."""
        if v is not None and not (len(v.value) == 4 and v.value.isdigit()):
            raise ValueError("card_last4 must be exactly four digits")
        return v


class Quality(_Strict):
    """The quality gate's verdict on the image the text was read from."""

    accepted: bool = True
    sharpness: float | None = Field(default=None, description="Variance of the Laplacian.")
    brightness: float | None = Field(default=None, description="Mean grey level, 0..255.")
    glare: float | None = Field(default=None, description="Share of saturated pixels, 0..1.")
    receipt_found: bool | None = Field(
        default=None, description="Whether a receipt outline was found and rectified."
    )
    reasons: list[str] = Field(default_factory=list, description="Why it was rejected or doubted.")


class Receipt(_Strict):
    """One read receipt: fields, the OCR lines behind them, and how the reading went."""

    fields: ReceiptFields = Field(default_factory=ReceiptFields)
    lines: list[OcrLine] = Field(default_factory=list)
    quality: Quality = Field(default_factory=Quality)
    needs_review: bool = False
    review_reasons: list[str] = Field(default_factory=list)
    ocr_engine: str = Field(default="unknown", description="Engine that read the lines.")
    model_versions: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(
        default_factory=dict, description="Milliseconds per pipeline stage."
    )
    image_size: tuple[int, int] | None = Field(
        default=None, description="(width, height) of the rectified image the boxes refer to."
    )

    def text(self) -> str:
        """The receipt's text, one OCR line per row, in reading order."""
        return "\n".join(line.text for line in self.lines)


ImageFormat = Literal["image/jpeg", "image/webp", "image/png"]
