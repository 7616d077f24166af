"""Claim codes: format, checksum, hash-only storage, expiry, single use, QR rendering."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from provisioning.claims import (
    ALPHABET,
    ClaimError,
    ClaimService,
    MemoryClaimStore,
    claim_uri,
    generate_code,
    hash_code,
    normalize_code,
    qr_png,
    qr_svg,
)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> ClaimService:
    return ClaimService(MemoryClaimStore(), clock=clock)


def test_codes_are_grouped_unambiguous_and_valid() -> None:
    codes = {generate_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set(code.replace("-", "")) <= set(ALPHABET)
        assert not set(code) & set("ILOU")
        assert normalize_code(code) == code.replace("-", "")


def test_typing_variants_are_accepted() -> None:
    code = generate_code()
    sloppy = " " + code.lower().replace("-", " ").replace("1", "l").replace("0", "o") + " "
    assert normalize_code(sloppy) == code.replace("-", "")
    assert normalize_code(claim_uri(code)) == code.replace("-", "")


def test_every_single_symbol_typo_is_detected() -> None:
    canonical = normalize_code(generate_code())
    for i, original in enumerate(canonical):
        for symbol in ALPHABET:
            if symbol == original:
                continue
            typo = canonical[:i] + symbol + canonical[i + 1 :]
            with pytest.raises(ClaimError) as err:
                normalize_code(typo)
            assert err.value.code == "checksum"


def test_most_adjacent_swaps_are_detected() -> None:
    caught = total = 0
    for _ in range(50):
        c = normalize_code(generate_code())
        for i in range(len(c) - 1):
            if c[i] == c[i + 1]:
                continue
            total += 1
            try:
                normalize_code(c[:i] + c[i + 1] + c[i] + c[i + 2 :])
            except ClaimError:
                caught += 1
    assert caught / total > 0.95


@pytest.mark.parametrize(("text", "code"), [("ABC", "malformed"), ("U" * 16, "malformed")])
def test_malformed_codes_say_why(text: str, code: str) -> None:
    with pytest.raises(ClaimError) as err:
        normalize_code(text)
    assert err.value.code == code


def test_only_the_hash_is_stored(service: ClaimService) -> None:
    issued = service.create("org-1", label="shop 2")
    stored = service.store.get(hash_code(issued.code))
    assert stored == issued.record
    assert issued.code.replace("-", "") not in repr(stored)
    assert stored.organization_id == "org-1"


def test_code_works_once(service: ClaimService) -> None:
    issued = service.create("org-1")
    used = service.redeem(issued.code, "scanner-01")
    assert used.organization_id == "org-1"
    assert used.device_id == "scanner-01"
    with pytest.raises(ClaimError) as err:
        service.redeem(issued.code, "scanner-02")
    assert err.value.code == "used"


def test_code_expires(service: ClaimService, clock: Clock) -> None:
    issued = service.create("org-1", ttl=dt.timedelta(hours=1))
    clock.now += dt.timedelta(hours=1)
    with pytest.raises(ClaimError) as err:
        service.redeem(issued.code, "scanner-01")
    assert err.value.code == "expired"


def test_unknown_code(service: ClaimService) -> None:
    with pytest.raises(ClaimError) as err:
        service.redeem(generate_code(), "scanner-01")
    assert err.value.code == "unknown"


def test_racing_redeems_succeed_once(service: ClaimService) -> None:
    issued = service.create("org-1")
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            service.redeem(issued.code, f"scanner-{i}")
            results.append("ok")
        except ClaimError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["used"] * 7


def test_bad_create_arguments(service: ClaimService) -> None:
    with pytest.raises(ValueError, match="organisation"):
        service.create("")
    with pytest.raises(ValueError, match="positive"):
        service.create("org-1", ttl=dt.timedelta(0))


def test_qr_codes_render_the_claim_uri() -> None:
    code = generate_code()
    png = qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = qr_svg(code)
    assert b"<svg" in svg
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    # version 2 QR (25 modules) + 2*4 border, 8 px per module
    assert image.size == ((25 + 8) * 8, (25 + 8) * 8)
    import cv2
    import numpy as np

    decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(np.array(image.convert("L")))
    assert decoded == claim_uri(code)
