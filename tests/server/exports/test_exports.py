"""Exports on both databases, parsed back: CSV, JSON, Xero, QuickBooks, ZIP; filters, tenancy."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from models.protocol import ReceiptMessage
from models.receipt import LineItem, Receipt, TaxLine, TextField
from server.api.app import create_app
from server.exports import repository as export_repo
from server.images.local import LocalImageStore
from server.receipts.repository import ReceiptRepository
from server.settings import Settings
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic

T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
EXPORTS = "/api/v1/exports"


@pytest.fixture
def client(db: Db, store: LocalImageStore) -> Iterator[TestClient]:
    settings = Settings(database_url=db.url, image_store={"type": "local", "root": str(store.root)})
    with TestClient(create_app(settings, engine=db.engine, images=store)) as c:
        yield c


def auth(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.token}"}


def with_fields(msg: ReceiptMessage, **fields: Any) -> ReceiptMessage:
    """`msg` with more receipt fields (items, taxes, category...) than the helper sets."""
    new = msg.receipt.fields.model_copy(update=fields)
    return msg.model_copy(update={"receipt": Receipt(fields=new, ocr_engine="test")})


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def header(body: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(body.decode("utf-8"))))


@pytest.fixture
def books(db: Db, store: LocalImageStore) -> dict[str, Any]:
    """Three receipts of Acme (fuel with items and an image, a meal, an unread one)."""
    acme = make_tenant(db, "Acme", "till-1", "till-2")
    img = jpeg_bytes(9)
    fuel = with_fields(
        receipt_message(
            merchant="Shell Garage", total="30.00", date=dt.date(2024, 5, 3), captured_at=T0
        ),
        category=TextField(value="Fuel", confidence=0.8),
        receipt_number=TextField(value="INV-77", confidence=0.9),
        address=TextField(value="1 High Street", confidence=0.6),
        taxes=[TaxLine(label="VAT", rate=Decimal(20), amount=Decimal("2.50"))],
        items=[
            LineItem(
                description="Unleaded",
                quantity=Decimal(2),
                unit_price=Decimal("5.00"),
                amount=Decimal("10.00"),
            ),
            LineItem(description="Engine oil", amount=Decimal("17.50")),
        ],
        payment_method=TextField(value="card", confidence=0.9),
    )
    fuel = fuel.model_copy(update={"image": receipt_message(image=img).image})
    meal = with_fields(
        receipt_message(
            merchant="Café Nord",
            total="8.05",
            date=dt.date(2024, 5, 20),
            captured_at=T0 + dt.timedelta(hours=1),
        ),
        category=TextField(value="  MEALS ", confidence=0.7),
    )
    unread = receipt_message(
        merchant=None, total=None, date=None, captured_at=T0 + dt.timedelta(hours=2)
    )
    ingest(
        db,
        store,
        [
            (receipt_topic("till-1"), fuel.to_json()),
            (image_topic("till-1", fuel.receipt_id), img),
            (receipt_topic("till-2"), meal.to_json()),
            (receipt_topic("till-2"), unread.to_json()),
        ],
    )
    return {"acme": acme, "fuel": fuel, "meal": meal, "unread": unread, "img": img}


def test_account_codes_get_put_and_validation(client: TestClient, books: dict[str, Any]):
    acme = books["acme"]
    r = client.get(f"{EXPORTS}/account-codes", headers=auth(acme))
    assert r.status_code == 200
    assert r.json() == {
        "default_account_code": "429",
        "default_tax_type": "Tax on Purchases",
        "mappings": [],
    }
    body = {
        "default_account_code": "400",
        "mappings": [
            {"category": "Fuel", "account_code": "449", "tax_type": "20% (VAT on Expenses)"},
            {"category": "Meals", "account_code": "420"},
        ],
    }
    r = client.put(f"{EXPORTS}/account-codes", json=body, headers=auth(acme))
    assert r.status_code == 200, r.text
    got = client.get(f"{EXPORTS}/account-codes", headers=auth(acme)).json()
    assert got["default_account_code"] == "400"
    assert got["default_tax_type"] == "Tax on Purchases"
    assert got["mappings"] == [
        {"category": "fuel", "account_code": "449", "tax_type": "20% (VAT on Expenses)"},
        {"category": "meals", "account_code": "420", "tax_type": None},
    ]
    dup = {
        "mappings": [
            {"category": "Fuel", "account_code": "1"},
            {"category": "FUEL", "account_code": "2"},
        ]
    }
    r = client.put(f"{EXPORTS}/account-codes", json=dup, headers=auth(acme))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert "mapped twice" in r.json()["error"]["message"]
    # the refused PUT changed nothing
    assert client.get(f"{EXPORTS}/account-codes", headers=auth(acme)).json() == got


def _map_codes(client: TestClient, tenant: Tenant) -> None:
    body = {
        "default_account_code": "400",
        "mappings": [{"category": "fuel", "account_code": "449", "tax_type": "VAT20"}],
    }
    assert (
        client.put(f"{EXPORTS}/account-codes", json=body, headers=auth(tenant)).status_code == 200
    )


def test_receipts_csv_and_line_items(client: TestClient, books: dict[str, Any]):
    acme, fuel, meal, unread = books["acme"], books["fuel"], books["meal"], books["unread"]
    _map_codes(client, acme)
    r = client.get(f"{EXPORTS}/receipts.csv", headers=auth(acme))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="receipts-')
    got = rows(r.content)
    assert [g["receipt_id"] for g in got] == [
        str(unread.receipt_id),
        str(meal.receipt_id),
        str(fuel.receipt_id),
    ]
    by_id = {g["receipt_id"]: g for g in got}
    f = by_id[str(fuel.receipt_id)]
    assert f["merchant"] == "Shell Garage"
    assert f["device_id"] == "till-1"
    assert f["date"] == f["effective_date"] == "2024-05-03"
    assert dt.datetime.fromisoformat(f["captured_at"]) == T0
    assert Decimal(f["total"]) == Decimal("30.00") and f["total"] == "30.00"
    assert f["tax"] == "2.50"
    assert f["category"] == "Fuel" and f["account_code"] == "449"
    assert f["receipt_number"] == "INV-77"
    assert f["payment_method"] == "card"
    assert f["currency"] == "EUR"
    assert f["needs_review"] in {"true", "false"}
    assert f["image_url"] == f"/api/v1/receipts/{fuel.receipt_id}/image"
    m = by_id[str(meal.receipt_id)]
    assert m["total"] == "8.05" and m["merchant"] == "Café Nord"
    assert m["account_code"] == "400"  # "  MEALS " is not mapped: the organisation default
    assert m["image_url"] == ""
    u = by_id[str(unread.receipt_id)]
    assert u["total"] == "" and u["merchant"] == "" and u["date"] == ""
    assert u["effective_date"] == (T0 + dt.timedelta(hours=2)).date().isoformat()

    items = rows(client.get(f"{EXPORTS}/receipts.csv?lines=items", headers=auth(acme)).content)
    assert len(items) == 4  # two items of the fuel receipt, one row each for the others
    fuel_items = [i for i in items if i["receipt_id"] == str(fuel.receipt_id)]
    assert [(i["item_index"], i["item_description"]) for i in fuel_items] == [
        ("1", "Unleaded"),
        ("2", "Engine oil"),
    ]
    assert fuel_items[0]["item_quantity"] == "2.00"
    assert fuel_items[0]["item_unit_price"] == "5.00"
    assert fuel_items[0]["item_amount"] == "10.00"
    assert fuel_items[1]["item_quantity"] == "" and fuel_items[1]["item_amount"] == "17.50"
    assert all(i["total"] == "30.00" for i in fuel_items)
    meal_row = next(i for i in items if i["receipt_id"] == str(meal.receipt_id))
    assert meal_row["item_index"] == "" and meal_row["item_description"] == ""


def test_receipts_json(client: TestClient, books: dict[str, Any]):
    acme, fuel = books["acme"], books["fuel"]
    r = client.get(f"{EXPORTS}/receipts.json", headers=auth(acme))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = json.loads(r.content)
    assert len(data) == 3
    f = next(d for d in data if d["receipt_id"] == str(fuel.receipt_id))
    assert f["total"] == "30.00" and f["tax"] == "2.50"
    assert f["date"] == "2024-05-03"
    assert f["account_code"] == "429"  # nothing mapped: the built-in default
    assert f["items"] == [
        {"description": "Unleaded", "quantity": "2.00", "unit_price": "5.00", "amount": "10.00"},
        {"description": "Engine oil", "quantity": None, "unit_price": None, "amount": "17.50"},
    ]
    assert f["taxes"] == [{"label": "VAT", "rate": "20.00", "amount": "2.50"}]
    unread = next(d for d in data if d["receipt_id"] == str(books["unread"].receipt_id))
    assert unread["total"] is None and unread["merchant"] is None and unread["items"] == []
    flat = json.loads(
        client.get(f"{EXPORTS}/receipts.json?lines=items", headers=auth(acme)).content
    )
    assert len(flat) == 4
    assert {row["item_description"] for row in flat} == {"Unleaded", "Engine oil", None}


XERO_REQUIRED = {"ContactName", "InvoiceNumber", "InvoiceDate", "DueDate", "Quantity"}
XERO_NAMED = XERO_REQUIRED | {
    "EmailAddress",
    "POAddressLine1",
    "Description",
    "UnitAmount",
    "AccountCode",
    "TaxType",
    "Currency",
}


def test_xero_bills_csv(client: TestClient, books: dict[str, Any]):
    acme, meal, unread = books["acme"], books["meal"], books["unread"]
    _map_codes(client, acme)
    body = client.get(f"{EXPORTS}/xero-bills.csv", headers=auth(acme)).content
    names = [h.lstrip("*") for h in header(body)]
    assert set(names) >= XERO_NAMED
    assert {h.lstrip("*") for h in header(body) if h.startswith("*")} >= XERO_REQUIRED
    got = [{k.lstrip("*"): v for k, v in row.items()} for row in rows(body)]
    bills: dict[str, list[dict[str, str]]] = {}
    for row in got:
        bills.setdefault(row["InvoiceNumber"], []).append(row)
    fuel_lines = bills["INV-77"]
    assert [(x["Description"], x["Quantity"], x["UnitAmount"]) for x in fuel_lines] == [
        ("Unleaded", "2.00", "5.00"),
        ("Engine oil", "1.00", "17.50"),
        ("Difference to the receipt total (tax, discount, rounding)", "1.00", "2.50"),
    ]
    assert sum(Decimal(x["Quantity"]) * Decimal(x["UnitAmount"]) for x in fuel_lines) == Decimal(
        "30.00"
    )
    for x in fuel_lines:
        assert x["ContactName"] == "Shell Garage"
        assert x["POAddressLine1"] == "1 High Street"
        assert x["InvoiceDate"] == x["DueDate"] == "2024-05-03"
        assert x["AccountCode"] == "449" and x["TaxType"] == "VAT20"
        assert x["Currency"] == "EUR"
    meal_ref = f"RM-{meal.receipt_id.hex[:8].upper()}"
    (meal_line,) = bills[meal_ref]
    assert meal_line["ContactName"] == "Café Nord"
    assert (meal_line["Quantity"], meal_line["UnitAmount"]) == ("1.00", "8.05")
    assert meal_line["AccountCode"] == "400" and meal_line["TaxType"] == "Tax on Purchases"
    assert meal_line["InvoiceDate"] == "2024-05-20"
    (unread_line,) = bills[f"RM-{unread.receipt_id.hex[:8].upper()}"]
    assert unread_line["ContactName"] == "Unknown merchant"
    assert unread_line["UnitAmount"] == "" and "total not read" in unread_line["Description"]


def test_quickbooks_expenses_csv(client: TestClient, books: dict[str, Any]):
    acme, fuel, meal = books["acme"], books["fuel"], books["meal"]
    _map_codes(client, acme)
    body = client.get(f"{EXPORTS}/quickbooks-expenses.csv", headers=auth(acme)).content
    assert header(body)[:3] == ["Date", "Description", "Amount"]
    assert {"Payee", "Account", "Tax Code", "Tax Amount", "Currency", "Ref No", "Memo"} <= set(
        header(body)
    )
    got = {row["Ref No"]: row for row in rows(body)}
    f = got["INV-77"]
    assert f["Date"] == "2024-05-03"
    assert Decimal(f["Amount"]) == Decimal("-30.00") and f["Amount"] == "-30.00"
    assert f["Payee"] == "Shell Garage" and f["Account"] == "449" and f["Tax Code"] == "VAT20"
    assert f["Tax Amount"] == "2.50"
    assert f["Description"] == "Shell Garage - Fuel"
    assert str(fuel.receipt_id) in f["Memo"] and "card" in f["Memo"]
    m = got[f"RM-{meal.receipt_id.hex[:8].upper()}"]
    assert m["Amount"] == "-8.05" and m["Account"] == "400" and m["Tax Amount"] == ""


def test_zip_has_images_manifest_and_csv(
    client: TestClient, books: dict[str, Any], store: LocalImageStore
):
    acme, fuel, img = books["acme"], books["fuel"], books["img"]
    r = client.get(f"{EXPORTS}/receipts.zip", params={"device": "till-1"}, headers=auth(acme))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert names == {f"images/{fuel.receipt_id}.jpg", "receipts.csv", "manifest.json"}
        assert zf.read(f"images/{fuel.receipt_id}.jpg") == img
        manifest = json.loads(zf.read("manifest.json"))
        csv_rows = rows(zf.read("receipts.csv"))
    assert manifest["count"] == 1
    assert manifest["filters"]["device"] == "till-1"
    (entry,) = manifest["receipts"]
    assert entry["receipt_id"] == str(fuel.receipt_id)
    assert entry["image"] == f"images/{fuel.receipt_id}.jpg"
    assert entry["total"] == "30.00" and entry["image_missing"] is False
    assert [c["receipt_id"] for c in csv_rows] == [str(fuel.receipt_id)]

    everything = client.get(f"{EXPORTS}/receipts.zip", headers=auth(acme))
    with zipfile.ZipFile(io.BytesIO(everything.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert len(rows(zf.read("receipts.csv"))) == 3
    assert manifest["count"] == 3
    assert [e["image"] for e in manifest["receipts"]].count(None) == 2


def test_filters_match_the_receipts_list(client: TestClient, books: dict[str, Any]):
    acme, fuel, meal, unread = books["acme"], books["fuel"], books["meal"], books["unread"]

    def ids(path: str, **params: str) -> set[str]:
        r = client.get(f"{EXPORTS}/{path}", params=params, headers=auth(acme))
        assert r.status_code == 200, r.text
        if path.endswith(".json"):
            return {d["receipt_id"] for d in json.loads(r.content)}
        return {row["receipt_id"] for row in rows(r.content)}

    for path in ["receipts.csv", "receipts.json"]:
        assert ids(path, merchant="GARAGE") == {str(fuel.receipt_id)}
        assert ids(path, device="till-2") == {str(meal.receipt_id), str(unread.receipt_id)}
        assert ids(path, date_from="2024-05-10", date_to="2024-05-31") == {str(meal.receipt_id)}
        assert ids(path, date_to="2024-05-03") == {str(fuel.receipt_id)}
        assert ids(path, device="nobody") == set()
        listed = client.get(
            "/api/v1/receipts", params={"date_from": "2024-05-10"}, headers=auth(acme)
        ).json()
        assert ids(path, date_from="2024-05-10") == {i["id"] for i in listed["items"]}
    xero = rows(
        client.get(
            f"{EXPORTS}/xero-bills.csv", params={"merchant": "café"}, headers=auth(acme)
        ).content
    )
    assert [x["*ContactName"] for x in xero] == ["Café Nord"]


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2024-13-01"}, "date_to"),
        ({"date_from": "2024-06-01", "date_to": "2024-05-01"}, "date_from"),
        ({"lines": "taxes"}, "lines"),
        ({"merchant": "x" * 501}, "merchant"),
    ],
)
def test_bad_filters_are_422_with_the_error_shape(
    client: TestClient, tenant: Tenant, params: dict[str, str], mentions: str
):
    paths = ["receipts.csv", "receipts.json", "xero-bills.csv", "quickbooks-expenses.csv"]
    paths += ["receipts.zip"]
    if "lines" in params:
        paths = ["receipts.csv", "receipts.json"]
    for path in paths:
        r = client.get(f"{EXPORTS}/{path}", params=params, headers=auth(tenant))
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == "application/json"
        err = r.json()["error"]
        assert err["code"] == "invalid_request"
        assert mentions in err["message"]


def test_another_organisation_sees_none_of_it(db: Db, client: TestClient, books: dict[str, Any]):
    acme = books["acme"]
    _map_codes(client, acme)
    other = make_tenant(db, "Other", "other-scanner")
    empty_csv = client.get(f"{EXPORTS}/receipts.csv", headers=auth(other)).content
    assert header(empty_csv)[0] == "receipt_id" and rows(empty_csv) == []
    assert json.loads(client.get(f"{EXPORTS}/receipts.json", headers=auth(other)).content) == []
    for path in ["xero-bills.csv", "quickbooks-expenses.csv", "receipts.csv?lines=items"]:
        r = client.get(f"{EXPORTS}/{path}", headers=auth(other))
        assert r.status_code == 200 and rows(r.content) == []
    with zipfile.ZipFile(
        io.BytesIO(client.get(f"{EXPORTS}/receipts.zip", headers=auth(other)).content)
    ) as zf:
        assert set(zf.namelist()) == {"receipts.csv", "manifest.json"}
        assert json.loads(zf.read("manifest.json"))["count"] == 0
    # Acme's mapping is Acme's: the other organisation has the defaults and cannot see it
    codes = client.get(f"{EXPORTS}/account-codes", headers=auth(other)).json()
    assert codes["mappings"] == [] and codes["default_account_code"] == "429"
    put = {"mappings": [{"category": "fuel", "account_code": "999"}]}
    assert client.put(f"{EXPORTS}/account-codes", json=put, headers=auth(other)).status_code == 200
    assert (
        client.get(f"{EXPORTS}/account-codes", headers=auth(acme)).json()["mappings"][0][
            "account_code"
        ]
        == "449"
    )
    # and Acme still sees all its receipts
    assert len(rows(client.get(f"{EXPORTS}/receipts.csv", headers=auth(acme)).content)) == 3


def test_exports_need_a_valid_token(client: TestClient, tenant: Tenant):
    for path in ["receipts.csv", "receipts.json", "xero-bills.csv", "quickbooks-expenses.csv"]:
        for path_ in [path, "receipts.zip", "account-codes"]:
            r = client.get(f"{EXPORTS}/{path_}")
            assert r.status_code == 401 and r.json()["error"]["code"] == "missing_token"
            r = client.get(f"{EXPORTS}/{path_}", headers={"Authorization": "Bearer rm_forged"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_a_large_export_streams_in_pages(
    db: Db, store: LocalImageStore, client: TestClient, monkeypatch: pytest.MonkeyPatch
):
    big = make_tenant(db, "Big", "busy-till", plan="business")  # unlimited
    n = 2 * export_repo.PAGE_SIZE + 123
    msgs = [
        receipt_message(
            merchant=f"Shop {i}",
            total=f"{i}.{i % 100:02d}",
            captured_at=T0 + dt.timedelta(seconds=i // 2),
        )
        for i in range(n)
    ]
    for start in range(0, n, 500):
        ingest(
            db,
            store,
            [(receipt_topic("busy-till"), m.to_json()) for m in msgs[start : start + 500]],
        )

    held: list[int] = []
    original = ReceiptRepository.list

    def counting_list(self: ReceiptRepository, *args: Any, **kwargs: Any) -> Any:
        held.append(len(self.session.identity_map))  # what the session holds before each page
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ReceiptRepository, "list", counting_list)
    statements: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        if "FROM receipts" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        body = client.get(f"{EXPORTS}/receipts.csv", headers=auth(big)).content
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)

    got = rows(body)
    assert len(got) == n
    assert len({g["receipt_id"] for g in got}) == n
    by_id = {uuid.UUID(g["receipt_id"]): g for g in got}
    for i in (0, 77, n - 1):
        assert Decimal(by_id[msgs[i].receipt_id]["total"]) == Decimal(f"{i}.{i % 100:02d}")
    pages = n // export_repo.PAGE_SIZE + 1
    assert len(held) == pages  # one query per page, never one for everything
    assert len(statements) == pages and all("LIMIT" in s for s in statements)
    assert max(held) <= 2 * export_repo.PAGE_SIZE  # earlier pages were let go of
