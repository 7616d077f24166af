"""The scanners pages: the fleet list and one scanner, commands and removal, by role."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from server.db.models import Device, Receipt
from server.fleet.models import DeviceCommand
from tests.server.dashboard.owner_site import OwnerSite


def test_the_list_shows_state_versions_queue_and_counts(owner_site: OwnerSite):
    owner_site.login("viewer@acme.test")  # reading needs no more than a viewer
    page = owner_site.client.get("/app/devices")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/app/devices"' in html  # in the navigation
    assert 'data-device="till-1" data-state="online"' in html
    assert 'data-device="till-2" data-state="offline"' in html
    assert "globex" not in html.lower()
    assert "1.4.2" in html and "ocr 2024.06" in html
    assert "912 ms" in html and ("54 °C" in html or "55 °C" in html)
    counts = html.split('id="state-counts"')[1].split("</ul>")[0]
    assert "<strong>1</strong> online" in counts and "<strong>1</strong> offline" in counts
    assert "<strong>3</strong> receipts waiting" in counts


def test_the_scanner_page_shows_heartbeat_configuration_and_commands(owner_site: OwnerSite):
    owner_site.login("viewer@acme.test")
    html = owner_site.client.get("/app/devices/till-1").text
    assert 'id="device-state">online' in html
    assert "telemetry-outbox_depth" in html
    assert "version <strong>1</strong>" in html and "In line." in html
    assert 'data-status="succeeded"' in html and "read again" in html
    assert "/commands" not in html.split('id="command-list"')[0].split('id="commands"')[1]
    assert 'id="remove-link"' not in html  # a viewer gets no buttons
    assert owner_site.client.get("/app/devices/globex-1").status_code == 404
    assert owner_site.client.get("/app/devices/nobody").status_code == 404


def test_an_owner_sends_a_command_which_is_published(owner_site: OwnerSite):
    client = owner_site.client
    token = owner_site.login("viewer@acme.test")
    assert (
        client.post(
            "/app/devices/till-1/commands", data={"name": "reboot", "csrf_token": token}
        ).status_code
        == 403
    )
    token = owner_site.login("owner@acme.test")
    assert client.post("/app/devices/till-1/commands", data={"name": "reboot"}).status_code == 403
    bad = client.post("/app/devices/till-1/commands", data={"name": "ota", "csrf_token": token})
    assert bad.status_code == 400 and "choose a command" in bad.text
    r = client.post(
        "/app/devices/till-1/commands",
        data={"name": "reboot", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/devices/till-1?sent=reboot"
    page = client.get(r.headers["location"]).text
    assert "Command reboot sent" in page and 'data-status="sent"' in page
    sent = [json.loads(p) for t, p, _q, _r in owner_site.publisher.messages if "/cmd/" in t]
    assert sent[-1]["name"] == "reboot"
    with owner_site.db.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(DeviceCommand)
                .where(DeviceCommand.name == "reboot")
            )
            == 1
        )


def test_removal_asks_for_the_id_and_keeps_the_receipts(owner_site: OwnerSite):
    client = owner_site.client
    token = owner_site.login("member@acme.test")
    assert client.get("/app/devices/till-1/remove").status_code == 403
    assert (
        client.post(
            "/app/devices/till-1/remove", data={"confirm": "till-1", "csrf_token": token}
        ).status_code
        == 403
    )
    token = owner_site.login("admin@acme.test")
    confirm = client.get("/app/devices/till-1/remove")
    assert confirm.status_code == 200 and "Its receipts and their images stay" in confirm.text
    wrong = client.post(
        "/app/devices/till-1/remove", data={"confirm": "till-2", "csrf_token": token}
    )
    assert wrong.status_code == 400
    r = client.post(
        "/app/devices/till-1/remove",
        data={"confirm": "till-1", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    listing = client.get(r.headers["location"]).text
    assert "Scanner till-1 was removed" in listing and 'data-device="till-1"' not in listing
    assert client.get("/app/devices/till-1").status_code == 404
    with owner_site.db.sessions() as session:
        device = session.scalar(select(Device).where(Device.device_id == "till-1"))
        assert device is not None and device.removed_at is not None
        kept = session.scalar(
            select(func.count()).select_from(Receipt).where(Receipt.device_id == device.id)
        )
        assert kept == 3
    retained = [
        (t, p)
        for t, p, _q, r in owner_site.publisher.messages
        if r and t.endswith("till-1/config/desired")
    ]
    assert retained[-1][1] == b""  # the retained configuration is cleared
    # a made-up notice is not echoed
    assert "was removed" not in client.get("/app/devices?removed=%3Cb%3Ex").text


def test_the_devices_page_fits_a_phone_without_internet_assets(owner_site: OwnerSite):
    owner_site.login("owner@acme.test")
    for path in ("/app/devices", "/app/devices/till-1"):
        html = owner_site.client.get(path).text
        assert 'name="viewport"' in html
        assert "http://" not in html and "https://" not in html
