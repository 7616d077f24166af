"""Receipt pages: the list with search and filters, one receipt with its image and fields
(edited as corrections), and the review queue."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.accounts.roles import EDIT_RECEIPTS
from server.accounts.service import user_actor
from server.api.deps import Images
from server.api.errors import ApiError
from server.dashboard import views
from server.dashboard.corrections import FIELDS, REVIEW_FIELDS, CorrectionError, correct_receipt
from server.dashboard.deps import PREFIX, Browser, CheckedForm, Db, PageError, Viewer, require
from server.dashboard.pages import redirect, render
from server.dashboard.repository import SORTS, BrowseFilter
from server.plans.quota import held_note
from server.receipts import service as receipts_service
from server.receipts.repository import ReceiptRecord

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def home() -> Response:
    return redirect(PREFIX + "/receipts")


@router.get("/receipts")
def receipt_list(request: Request, who: Viewer, browser: Browser) -> Response:
    params = dict(request.query_params)
    query = views.parse_list_query(params)
    page = browser.browse(query.filters, query.sort, query.page, views.PER_PAGE)
    keep = {k: v for k, v in params.items() if k != "page" and v}

    def page_url(n: int) -> str:
        return f"{PREFIX}/receipts?{urlencode({**keep, 'page': n})}"

    return render(
        request,
        "receipts.html",
        who,
        page=page,
        query=query,
        params=params,
        sorts=SORTS,
        devices=browser.device_ids(),
        held_note=held_note(browser.session, browser.organization_id),
        export_query=urlencode(keep),
        prev_url=page_url(page.page - 1) if page.page > 1 else None,
        next_url=page_url(page.page + 1) if page.page < page.pages else None,
    )


def _require_record(
    browser: Browser, receipt_id: uuid.UUID, *, lock: bool = False
) -> ReceiptRecord:
    record = browser.for_update(receipt_id) if lock else browser.get(receipt_id)
    if record is None:
        raise PageError(404, "there is no such receipt in your organisation")
    return record


def _receipt_page(
    request: Request,
    who: Viewer,
    browser: Browser,
    record: ReceiptRecord,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    doc = record.receipt.document
    return render(
        request,
        "receipt.html",
        who,
        status=status,
        record=record,
        fields=views.field_views(doc, browser.corrections(record.receipt.id)),
        overlay=views.overlay(doc),
        reasons=views.review_reasons(doc) if record.receipt.needs_review else [],
        can_edit=who.role.at_least(EDIT_RECEIPTS),
        errors=errors or {},
        typed=typed or {},
        notice=notice,
        corrections=browser.corrections(record.receipt.id),
        held_note=held_note(browser.session, browser.organization_id),
    )


@router.get("/receipts/{receipt_id}")
def receipt_page(
    request: Request, who: Viewer, browser: Browser, receipt_id: uuid.UUID
) -> Response:
    notice = "Saved." if request.query_params.get("saved") else None
    return _receipt_page(request, who, browser, _require_record(browser, receipt_id), notice=notice)


@router.post("/receipts/{receipt_id}")
def edit_receipt(
    request: Request,
    *,
    db: Db,
    who: Viewer,
    browser: Browser,
    form: CheckedForm,
    receipt_id: uuid.UUID,
) -> Response:
    require(who, EDIT_RECEIPTS)
    record = _require_record(browser, receipt_id, lock=True)
    typed = {f.name: form[f"f_{f.name}"] for f in FIELDS if f"f_{f.name}" in form}
    try:
        with db.begin_nested():
            correct_receipt(
                db, browser, record, typed, user_actor(who.user), approve=form.get("approve") == "1"
            )
    except CorrectionError as exc:
        if form.get("from") == "review":
            return _review_page(request, who, browser, errors={str(receipt_id): exc.errors})
        return _receipt_page(
            request, who, browser, record, status=400, errors=exc.errors, typed=typed
        )
    if form.get("from") == "review":
        return redirect(PREFIX + "/review")
    return redirect(f"{PREFIX}/receipts/{receipt_id}?saved=1")


@router.get("/receipts/{receipt_id}/image")
def receipt_image(browser: Browser, store: Images, _who: Viewer, receipt_id: uuid.UUID) -> Response:
    try:
        data, content_type = receipts_service.get_image(browser, store, receipt_id)
    except ApiError as exc:
        raise PageError(exc.status, exc.message) from exc
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


def _review_page(
    request: Request,
    who: Viewer,
    browser: Browser,
    errors: dict[str, dict[str, str]] | None = None,
) -> Response:
    page = browser.browse(BrowseFilter(review="yes"), "captured", 1, 50)
    items = []
    for record in page.records:
        corrections = browser.corrections(record.receipt.id)
        fields = views.field_views(record.receipt.document, corrections)
        items.append(
            {
                "record": record,
                "reasons": views.review_reasons(record.receipt.document),
                "fields": [f for f in fields if f.name in REVIEW_FIELDS],
            }
        )
    return render(
        request,
        "review.html",
        who,
        status=400 if errors else 200,
        items=items,
        waiting=page.total_count,
        can_edit=who.role.at_least(EDIT_RECEIPTS),
        errors=errors or {},
    )


@router.get("/review")
def review_queue(request: Request, who: Viewer, browser: Browser) -> Response:
    return _review_page(request, who, browser)
