"""The one table of data rights: the record that an organisation was deleted, kept outside it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import RecordModel
from server.db.types import JsonDoc


class OrganizationDeletion(RecordModel):
    """The record that an organisation was deleted, kept outside it (no foreign key, no name)."""

    __tablename__ = "organization_deletions"

    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    requested_by: Mapped[str] = mapped_column(
        String(200), comment="'user:<id>' or 'api-token:<id>'; no e-mail (it is deleted too)."
    )
    counts: Mapped[dict[str, Any]] = mapped_column(JsonDoc, comment="Rows deleted per table.")
    images_deleted: Mapped[int] = mapped_column(Integer, default=0)
