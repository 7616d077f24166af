"""What the account-code endpoints take and return."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from server.exports.repository import DEFAULT_ACCOUNT_CODE, DEFAULT_TAX_TYPE, normalize_category


class AccountCodeMapping(BaseModel):
    category: str = Field(min_length=1, max_length=100, description="Receipt category (any case).")
    account_code: str = Field(min_length=1, max_length=40, description="e.g. Xero's '449'.")
    tax_type: str | None = Field(
        default=None, max_length=60, description="Xero TaxType; null: the default tax type."
    )


class AccountCodesIn(BaseModel):
    default_account_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description=f"For unmapped categories; null: the built-in {DEFAULT_ACCOUNT_CODE}.",
    )
    default_tax_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description=f"Null: the built-in {DEFAULT_TAX_TYPE!r}.",
    )
    mappings: list[AccountCodeMapping] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _distinct_categories(self) -> AccountCodesIn:
        seen: set[str] = set()
        for m in self.mappings:
            key = normalize_category(m.category)
            if not key:
                raise ValueError("a category must not be blank")
            if key in seen:
                raise ValueError(f"category {m.category!r} is mapped twice")
            seen.add(key)
        return self


class AccountCodesOut(BaseModel):
    default_account_code: str = Field(description="What an unmapped category books to.")
    default_tax_type: str
    mappings: list[AccountCodeMapping]
