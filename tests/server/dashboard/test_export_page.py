"""The receipts list's "Export CSV": the list's filters, the API export's columns, one org."""

from __future__ import annotations

import csv
import io
import re

from server.exports.service import RECEIPT_COLUMNS
from tests.server.dashboard.conftest import Site


def test_the_export_link_carries_the_filters_and_the_file_matches_the_list(site: Site):
    site.login("viewer@acme.test")
    page = site.client.get("/app/receipts", params={"q": "bakery", "sort": "merchant"}).text
    link = re.search(r'<a href="([^"]+)" id="export-csv"', page)
    assert link, "the list has no export link"
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("/app/export/receipts.csv?") and "q=bakery" in href

    r = site.client.get(href)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0].keys()) == RECEIPT_COLUMNS
    assert [row["merchant"] for row in rows] == ["Bakery Bloom"]
    assert rows[0]["receipt_id"] == str(site.receipts[1].receipt_id)

    everything = list(csv.DictReader(io.StringIO(site.client.get("/app/export/receipts.csv").text)))
    assert sorted(row["receipt_id"] for row in everything) == sorted(
        str(m.receipt_id) for m in site.receipts
    )  # only this organisation's receipts (Globex has the same merchants)


def test_the_export_needs_a_signed_in_user(site: Site):
    r = site.client.get("/app/export/receipts.csv", follow_redirects=False)
    assert r.status_code == 303 and "/app/login" in r.headers["location"]
