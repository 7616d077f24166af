"""The organisation's export: every table, images, line items, a manifest; no secrets."""

from __future__ import annotations

import io
import json
import zipfile

from server.images.base import sha256_hex
from tests.server.datarights.conftest import ACME_ONLY, GLOBEX_ONLY, SHARED, World


def _export(world: World) -> zipfile.ZipFile:
    r = world.client.get("/api/v1/organization/export.zip", headers=world.acme_owner)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "organization-export-" in r.headers["content-disposition"]
    return zipfile.ZipFile(io.BytesIO(r.content))


def _rows(zf: zipfile.ZipFile, table: str) -> list[dict]:
    return [json.loads(line) for line in zf.read(f"data/{table}.jsonl").splitlines()]


def test_the_export_holds_everything_of_the_organisation_and_nothing_else(world: World):
    zf = _export(world)
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "receipt-manager-org-export/1"
    assert manifest["organization"] == {"id": str(world.acme), "name": "Acme"}
    tables = manifest["tables"]
    assert tables["receipts"] == 2 and tables["receipt_images"] == 2
    assert tables["devices"] == 2 and tables["users"] == 1
    assert tables["receipt_corrections"] == 1 and tables["webhook_endpoints"] == 1
    assert tables["dead_letters"] == 1 and tables["audit_log"] >= 3
    assert tables["webhook_deliveries"] == 3  # 2 receipts created, 1 corrected: Acme's hook

    receipts = _rows(zf, "receipts")
    assert {r["id"] for r in receipts} == {str(i) for i in world.acme_receipts}
    assert all(r["organization_id"] == str(world.acme) for r in receipts)
    assert all(r["document"]["receipt"]["fields"] for r in receipts)  # documents included
    [correction] = _rows(zf, "receipt_corrections")
    assert correction["new_value"] == "Shop Zero"
    assert {d["device_id"] for d in _rows(zf, "devices")} == {"scanner-1", "scanner-2"}
    assert b"Shop 0" in zf.read("line_items.csv") or zf.read("line_items.csv").count(b"\n") >= 1

    names = set(zf.namelist())
    assert f"images/{sha256_hex(SHARED)}.jpg" in names
    assert f"images/{sha256_hex(ACME_ONLY)}.jpg" in names
    assert f"images/{sha256_hex(GLOBEX_ONLY)}.jpg" not in names
    assert zf.read(f"images/{sha256_hex(ACME_ONLY)}.jpg") == ACME_ONLY
    assert manifest["images"] == 2 and manifest["images_missing"] == []

    everything = b"".join(zf.read(n) for n in names)
    assert b"Globex" not in everything and str(world.globex).encode() not in everything
    assert world.webhook_secret.encode() not in everything
    token = world.acme_owner["Authorization"].split()[1]
    assert token.encode() not in everything
    assert b"argon2" not in everything  # no password hash
    [user] = _rows(zf, "users")
    assert "password_hash" not in user and user["email"] == "owner@acme.test"
    [hook] = _rows(zf, "webhook_endpoints")
    assert "secret" not in hook
    assert "token_hash" not in _rows(zf, "api_tokens")[0]
    assert "data/web_sessions.jsonl" not in names
    assert "password_hash" in manifest["left_out"]["columns"]["users"]


def test_only_an_owner_exports(world: World):
    r = world.client.get("/api/v1/organization/export.zip", headers=world.acme_admin)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "insufficient_role")
    assert world.client.get("/api/v1/organization/export.zip").status_code == 401
