"""Reading dead letters (ingest writes them through its own repository)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import DeadLetter


class DeadLetterRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def latest(self, limit: int, code: str | None = None) -> Sequence[DeadLetter]:
        """Newest first, optionally only one refusal `code`."""
        q = select(DeadLetter).order_by(DeadLetter.received_at.desc()).limit(limit)
        if code:
            q = q.where(DeadLetter.code == code)
        return self.session.scalars(q).all()
