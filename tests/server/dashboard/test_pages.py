"""The dashboard through HTTP on both databases: sign-in, CSRF, list, corrections, tenancy."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from models.evaluation.corrections import parse_record, read_corrections
from server.accounts.models import AuditEntry, ReceiptCorrection
from server.dashboard.corrections import export_corrections
from server.dashboard.repository import ReceiptBrowser
from server.db.models import Receipt
from tests.server.dashboard.conftest import Site, csrf


def test_pages_need_a_session_and_root_goes_to_the_dashboard(site: Site):
    resp = site.client.get("/", follow_redirects=False)
    assert resp.status_code == 307 and resp.headers["location"] == "/app/receipts"
    resp = site.client.get("/app/receipts?q=shop", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/app/login?next=%2Fapp%2Freceipts%3Fq%3Dshop"
    assert site.client.get("/api/v1/receipts").status_code == 401  # the API keeps its tokens


def test_login_sets_a_safe_cookie_and_refuses_bad_passwords_and_forms(site: Site):
    token = site.csrf_of("/app/login")
    bad = site.client.post(
        "/app/login",
        data={"email": "owner@acme.test", "password": "nope nope nope", "csrf_token": token},
    )
    assert bad.status_code == 400 and "Wrong e-mail or password" in bad.text
    forged = site.client.post(
        "/app/login",
        data={"email": "owner@acme.test", "password": "correct horse battery", "csrf_token": "x"},
    )
    assert forged.status_code == 403
    resp = site.client.post(
        "/app/login",
        data={
            "email": "owner@acme.test",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/app/receipts"
    cookie = resp.headers["set-cookie"].lower()
    assert "rm_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP here; HTTPS requests get Secure
    page = site.client.get("/app/receipts")
    assert page.status_code == 200 and "Corner Shop" in page.text
    # logout needs the session's CSRF token, then the session is gone server-side
    assert site.client.post("/app/logout", data={"csrf_token": "forged"}).status_code == 403
    site.client.post("/app/logout", data={"csrf_token": csrf(page.text)})
    assert site.client.get("/app/receipts", follow_redirects=False).status_code == 303


def test_list_search_filters_sorting_and_bad_filter_values(site: Site):
    site.login("owner@acme.test")
    text = site.client.get("/app/receipts").text
    assert "3 receipts" in text and "Fuel Station" in text
    assert "1 receipt<" in site.client.get("/app/receipts?q=milk").text  # OCR text, not merchant
    only = site.client.get("/app/receipts?q=bakery").text
    assert "Bakery Bloom" in only and "Corner Shop" not in only
    assert "1 receipt<" in site.client.get("/app/receipts?review=yes").text
    assert "2 receipts" in site.client.get("/app/receipts?min=5&max=100").text
    assert "2 receipts" in site.client.get("/app/receipts?from=2024-05-18").text
    assert "0 receipts" in site.client.get("/app/receipts?device=scanner-2").text
    by_total = site.client.get("/app/receipts?sort=total").text
    assert by_total.index("Bakery Bloom") < by_total.index("Corner Shop") < by_total.index("Fuel")
    bad = site.client.get("/app/receipts?from=yesterday&min=lots").text
    assert "is not a date" in bad and "is not an amount" in bad and "3 receipts" in bad


def test_correcting_a_field_keeps_the_original_and_writes_audit_and_record(
    site: Site, tmp_path: Path
):
    site.login("owner@acme.test")
    rid = site.receipts[0].receipt_id
    page = site.client.get(f"/app/receipts/{rid}")
    assert page.status_code == 200
    assert "<polygon" in page.text and 'viewBox="0 0 200 300"' in page.text
    assert "93 %" in page.text  # merchant confidence
    resp = site.client.post(
        f"/app/receipts/{rid}",
        data={"csrf_token": csrf(page.text), "f_total": "13,50", "f_merchant": "Corner Shop"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    after = site.client.get(f"/app/receipts/{rid}").text
    assert 'value="13.50"' in after and "read as 12.50" in after
    assert "13.50" in site.client.get("/app/receipts").text
    with site.db.sessions() as s:
        receipt = s.get(Receipt, rid)
        assert receipt is not None and str(receipt.total) in {"13.50", "13.5000"}
        assert receipt.document["receipt"]["fields"]["total"]["value"] == "12.50"  # original kept
        (corr,) = s.scalars(select(ReceiptCorrection)).all()
        record = parse_record(corr.record)
        assert (record.field, record.old_value, record.new_value) == ("total", "12.50", "13.50")
        assert record.image_size == (200, 300) and len(record.ocr_lines) == 3
        assert record.model_versions == {"ocr": "test-1"}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.entity_type == "receipt")).one()
        assert entry.before == {"total": "12.50"} and entry.after == {"total": "13.50"}
        assert entry.actor == "owner@acme.test"
        path = export_corrections(ReceiptBrowser(s, receipt.organization_id), tmp_path / "out")
    (back,) = list(read_corrections(path.parent))
    assert back.receipt_id == str(rid) and back.new_value == "13.50"
    assert json.loads(path.read_text())["format"] == "receipt-correction/1"


def test_bad_values_save_nothing_and_say_why(site: Site):
    site.login("owner@acme.test")
    rid = site.receipts[0].receipt_id
    token = site.csrf_of(f"/app/receipts/{rid}")
    resp = site.client.post(
        f"/app/receipts/{rid}",
        data={"csrf_token": token, "f_total": "twelve", "f_merchant": "Renamed", "f_date": "17/05"},
    )
    assert resp.status_code == 400
    assert "is not an amount" in resp.text and "YYYY-MM-DD" in resp.text
    assert 'value="twelve"' in resp.text  # what was typed is kept on the page
    with site.db.sessions() as s:
        assert s.scalars(select(ReceiptCorrection)).all() == []
        receipt = s.get(Receipt, rid)
        assert receipt is not None and receipt.merchant == "Corner Shop"


def test_review_queue_fix_and_approve(site: Site):
    site.login("owner@acme.test")
    page = site.client.get("/app/review")
    assert "1 receipt waiting" in page.text
    assert "total does not match the sum of the items" in page.text
    rid = site.receipts[2].receipt_id
    resp = site.client.post(
        f"/app/receipts/{rid}",
        data={
            "csrf_token": csrf(page.text),
            "from": "review",
            "approve": "1",
            "f_total": "16.00",
            "f_merchant": "Fuel Station",
            "f_date": "2024-06-02",
            "f_currency": "eur",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/app/review"
    assert "0 receipts waiting" in site.client.get("/app/review").text
    with site.db.sessions() as s:
        receipt = s.get(Receipt, rid)
        assert receipt is not None and not receipt.needs_review
        assert s.scalars(select(ReceiptCorrection.field)).all() == ["total"]  # currency unchanged
        entry = s.scalars(select(AuditEntry).where(AuditEntry.entity_type == "receipt")).one()
        assert entry.after == {"total": "16.00", "needs_review": False}


def test_viewer_cannot_edit(site: Site):
    site.login("viewer@acme.test")
    rid = site.receipts[0].receipt_id
    page = site.client.get(f"/app/receipts/{rid}")
    assert 'name="f_total"' not in page.text
    resp = site.client.post(
        f"/app/receipts/{rid}", data={"csrf_token": csrf(page.text), "f_total": "1"}
    )
    assert resp.status_code == 403
    assert (
        site.client.post(
            "/app/team/invite",
            data={"csrf_token": csrf(page.text), "email": "x@acme.test", "role": "viewer"},
        ).status_code
        == 403
    )


def test_another_organisations_receipts_are_invisible(site: Site):
    site.login("owner@globex.test")
    acme = site.receipts[0].receipt_id
    assert site.client.get(f"/app/receipts/{acme}").status_code == 404
    assert site.client.get(f"/app/receipts/{acme}/image").status_code == 404
    token = site.csrf_of("/app/receipts")
    assert (
        site.client.post(
            f"/app/receipts/{acme}", data={"csrf_token": token, "f_total": "0"}
        ).status_code
        == 404
    )
    listing = site.client.get("/app/receipts").text
    assert str(acme) not in listing and str(site.other_receipts[0].receipt_id) in listing
    with site.db.sessions() as s:
        receipt = s.get(Receipt, acme)
        assert receipt is not None and str(receipt.total).startswith("12.5")


def test_invite_accept_and_reset_through_the_pages(site: Site):
    site.login("owner@acme.test")
    token = site.csrf_of("/app/team")
    page = site.client.post(
        "/app/team/invite", data={"csrf_token": token, "email": "new@acme.test", "role": "member"}
    )
    link = page.text.split('id="issued-link"')[0].rsplit('value="', 1)[1].split('"')[0]
    path = link.replace("http://testserver", "")
    site.client.cookies.clear()
    form = site.client.get(path)
    assert "new@acme.test" in form.text
    resp = site.client.post(
        path,
        data={
            "csrf_token": csrf(form.text),
            "name": "New",
            "password": "a good long password",
            "password2": "a good long password",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Corner Shop" in site.client.get("/app/receipts").text  # signed in as the new member
    again = site.client.get(path)
    assert again.status_code == 400 and "already used" in again.text
