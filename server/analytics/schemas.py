"""What the analytics API returns; amounts are exact decimals, per currency (never mixed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, Field

from server.analytics.repository import Group


class SpendGroup(BaseModel):
    key: str | None = Field(description="Month (YYYY-MM), category, merchant or device id.")
    label: str = Field(description="The key as a person reads it ('(none)' when not read).")
    currency: str | None
    total: Decimal = Field(description="Sum of the receipts' totals (the corrected ones).")
    receipts: int


class SpendReport(BaseModel):
    group: Group
    date_from: dt.date | None
    date_to: dt.date | None
    groups: list[SpendGroup]


class TaxTotal(BaseModel):
    period: str = Field(description="Month, YYYY-MM.")
    currency: str | None
    label: str | None = Field(description="Tax name as printed, e.g. 'VAT'.")
    rate: Decimal | None = Field(description="Rate in percent.")
    amount: Decimal


class Amount(BaseModel):
    currency: str | None
    total: Decimal
    receipts: int


class Period(BaseModel):
    start: dt.date
    end: dt.date
    receipts: int
    spend: list[Amount]
    taxes: list[Amount] = Field(
        description="Tax amounts per currency; `receipts`: those with a tax line."
    )


class Change(BaseModel):
    currency: str | None
    this_period: Decimal
    last_period: Decimal
    percent: float | None = Field(description="Change against last month; null from zero.")


class Summary(BaseModel):
    as_of: dt.date
    month_so_far: Period
    last_month_same_days: Period = Field(
        description="The same days of the previous month (1st to the same day, or its last)."
    )
    change: list[Change]
    taxes_by_month: list[TaxTotal] = Field(description="Tax totals per month and rate.")
    taxes_partial: bool = Field(
        description="Always false: every receipt's taxes are summed (kept for older clients)."
    )
