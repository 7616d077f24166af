"""The "not a duplicate" action: a person overrules a duplicate flag (audited).

The receipt's `duplicate_of` is cleared and `not_duplicate` set, so the duplicate check
(server/receipts/duplicates.py) never flags it again; it counts in analytics and exports from
then on. The change is written to the audit log with who made it and the original it pointed at.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from server.accounts.audit import record_change
from server.accounts.roles import EDIT_RECEIPTS
from server.accounts.service import user_actor
from server.dashboard.deps import PREFIX, Browser, CheckedForm, Db, PageError, Viewer, require
from server.dashboard.pages import redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.post("/receipts/{receipt_id}/not-duplicate")
def not_a_duplicate(
    *, db: Db, who: Viewer, browser: Browser, _form: CheckedForm, receipt_id: uuid.UUID
) -> Response:
    require(who, EDIT_RECEIPTS)
    record = browser.for_update(receipt_id)
    if record is None:
        raise PageError(404, "there is no such receipt in your organisation")
    receipt = record.receipt
    if receipt.duplicate_of is not None:
        original = receipt.duplicate_of
        receipt.duplicate_of = None
        receipt.not_duplicate = True
        record_change(
            db,
            actor=user_actor(who.user),
            organization_id=receipt.organization_id,
            action="receipt.not_duplicate",
            entity_type="receipt",
            entity_id=receipt.id,
            before={"duplicate_of": str(original)},
            after={"duplicate_of": None, "not_duplicate": True},
        )
        db.flush()
    return redirect(f"{PREFIX}/receipts/{receipt_id}?saved=1")
