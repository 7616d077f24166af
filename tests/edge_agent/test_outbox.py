"""The outbox: atomic scans, ordered replay, delete on ack, the full policy, restart safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.outbox import Outbox, OutboxConfig, OutboxFull, OutMessage

MiB = 1 << 20


def scan(n: int, image_bytes: int = 1000) -> list[OutMessage]:
    return [
        OutMessage(f"rm/v1/dev/d/receipt#{n}", b'{"n": %d}' % n, 1, "receipt"),
        OutMessage(f"rm/v1/dev/d/image/{n}", b"x" * image_bytes, 1, "image"),
    ]


def test_scans_are_replayed_in_order_and_deleted_only_when_acked(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db"))
    for n in range(3):
        box.add_scan(f"r{n}", scan(n))
    rows = box.pending(limit=100)
    assert [r.receipt_id for r in rows] == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert [r.kind for r in rows[:2]] == ["receipt", "image"]
    assert box.pending(after_id=rows[1].id, limit=2) == rows[2:4]
    box.delete(rows[0].id)
    assert box.stats().depth == 5
    box.close()
    reopened = Outbox(OutboxConfig(path=tmp_path / "o.db"))
    assert [r.id for r in reopened.pending(limit=100)] == [r.id for r in rows[1:]]
    assert reopened.stats().receipts == 3


def test_source_key_is_remembered_with_the_scan(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db"))
    box.add_scan("r1", scan(1), source_key="a.jpg:10:99")
    for row in box.pending():
        box.delete(row.id)
    assert box.scanned("a.jpg:10:99") == "r1"
    assert box.scanned("b.jpg:10:99") is None


def test_shed_images_then_refuse_never_drops_stored_receipts(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db", max_bytes=MiB, images_max_fraction=0.5))
    n = 0
    while box.admission() == "ok":
        assert len(box.add_scan(f"r{n}", scan(n, image_bytes=100_000))) == 2
        n += 1
    assert box.stats().bytes >= MiB // 2
    with_images = n
    stored = box.add_scan("shed", scan(99, image_bytes=100_000))
    assert [m.kind for m in stored] == ["receipt"]
    # fill the rest with receipts only, until the hard limit refuses
    big_receipt = [OutMessage("t", b"r" * 100_000, 1, "receipt")]
    i = 0
    while box.admission() != "full":
        box.add_scan(f"big{i}", big_receipt)
        i += 1
    assert i < 20
    before = box.stats()
    with pytest.raises(OutboxFull):
        box.add_scan("refused", scan(100))
    after = box.stats()
    assert after == before, "a refused scan stored nothing"
    ids = {r.receipt_id for r in box.pending(limit=1000)}
    assert {f"r{i}" for i in range(with_images)} | {"shed"} <= ids
    # acks free room: scans are accepted again
    for row in box.pending(limit=1000):
        box.delete(row.id)
    assert box.admission() == "ok"


def test_refuse_policy_keeps_images_until_the_hard_limit(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db", max_bytes=MiB, policy="refuse"))
    for n in range(10):  # 10 x 100 kB: under 1 MiB, and every image kept
        assert len(box.add_scan(f"r{n}", scan(n, image_bytes=100_000))) == 2
    assert box.admission() == "ok"
    box.add_scan("r10", scan(10, image_bytes=100_000))
    assert box.admission() == "full"
    with pytest.raises(OutboxFull):
        box.add_scan("r11", scan(11))


def test_low_disk_refuses_new_scans(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db", min_free_bytes=1 << 62))
    assert box.admission() == "full"
    with pytest.raises(OutboxFull, match="free on disk"):
        box.add_scan("r", scan(1))


def test_purge_drops_only_images_of_delivered_receipts_and_compacts(tmp_path: Path) -> None:
    from edge_agent.outbox import OutMessage

    box = Outbox(OutboxConfig(path=tmp_path / "o.db"))
    for rid in ("delivered", "waiting"):
        box.add_scan(
            rid,
            [
                OutMessage(f"t/{rid}", b"{}", 1, "receipt"),
                OutMessage(f"t/image/{rid}", b"i" * 200_000, 1, "image"),
            ],
        )
    receipt_row = next(m for m in box.pending(limit=10) if m.receipt_id == "delivered")
    box.delete(receipt_row.id)  # the PUBACK of the first receipt
    report = box.purge()
    assert report["images_dropped"] == 1 and report["bytes_dropped"] == 200_000
    assert report["file_bytes_after"] < report["file_bytes_before"]
    left = {(m.receipt_id, m.kind) for m in box.pending(limit=10)}
    assert left == {("waiting", "receipt"), ("waiting", "image")}, "undelivered scans stay whole"
    box.close()
