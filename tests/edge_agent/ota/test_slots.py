"""A/B slots: unpacking only what the manifest lists, the atomic pointer, verification."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from edge_agent.ota.slots import SlotError, SlotStore
from provisioning.release import ArtifactRef, FileEntry, ReleaseManifest, SelfTestCase
from provisioning.signing import generate_signing_key, sign_manifest


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def manifest_for(files: dict[str, bytes], artifact: bytes) -> ReleaseManifest:
    return ReleaseManifest(
        release="m1",
        kind="models",
        created_at="2024-06-01T00:00:00Z",  # type: ignore[arg-type]
        artifact=ArtifactRef(size=len(artifact), sha256=hashlib.sha256(artifact).hexdigest()),
        files=[
            FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest())
            for p, d in files.items()
        ],
        selftest=[SelfTestCase(image="a.png", expect={"total": "1"})],
    )


def unpack(tmp_path: Path, members, files: dict[str, bytes]) -> SlotStore:
    artifact = tmp_path / "artifact.tar.gz"
    artifact.write_bytes(tar_gz(members))
    store = SlotStore(tmp_path / "ota")
    manifest = manifest_for(files, artifact.read_bytes())
    key = generate_signing_key()
    data = manifest.to_bytes()
    store.unpack(artifact, store.staging("a"), manifest, data, sign_manifest(key, data))
    store.install_staged("a")
    return store


def test_a_listed_artifact_unpacks_into_a_complete_slot(tmp_path: Path) -> None:
    files = {"a.png": b"png", "models/det.tflite": b"\x00" * 100}
    store = unpack(tmp_path, [regular(p, d) for p, d in files.items()], files)
    slot = store.slot_dir("a")
    assert (slot / "models" / "det.tflite").read_bytes() == b"\x00" * 100
    assert {p.name for p in slot.iterdir()} == {"a.png", "models", "manifest.json", "manifest.sig"}
    assert not (store.slots / ".a.new").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (regular("../evil.png", b"x"), "plain relative path"),
        (regular("/etc/evil.png", b"x"), "plain relative path"),
        (regular("extra.bin", b"x"), "not in the manifest"),
        (regular("a.png", b"pngpng"), "manifest says 3"),
        (regular("a.png", b"PNG"), "sha256"),
    ],
)
def test_members_that_are_not_exactly_the_manifest_are_refused(
    tmp_path: Path, member, message: str
) -> None:
    with pytest.raises(SlotError, match=message):
        unpack(tmp_path, [member], {"a.png": b"png"})


def test_links_and_missing_files_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("a.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(SlotError, match="not a regular file"):
        unpack(tmp_path, [(link, None)], {"a.png": b"png"})
    with pytest.raises(SlotError, match="lacks files"):
        unpack(tmp_path, [regular("a.png", b"png")], {"a.png": b"png", "b.bin": b"b"})


def test_a_truncated_artifact_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "artifact.tar.gz"
    artifact.write_bytes(tar_gz([regular("a.png", b"png" * 1000)])[:60])
    store = SlotStore(tmp_path / "ota")
    manifest = manifest_for({"a.png": b"png" * 1000}, b"x")
    with pytest.raises(SlotError):
        store.unpack(artifact, store.staging("a"), manifest, b"{}", "sig")


def test_the_pointer_switches_atomically_and_never_to_the_slot_in_force(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "ota")
    assert store.current() is None and store.inactive() == "a"
    store.slot_dir("a").mkdir()
    store.switch("a")
    assert os.readlink(store.pointer) == "slots/a" and store.inactive() == "b"
    store.staging("a")
    with pytest.raises(SlotError, match="in force"):
        store.install_staged("a")
    store.switch(None)
    assert store.current() is None


def test_verify_names_what_differs(tmp_path: Path) -> None:
    key = generate_signing_key()
    files = {"a.png": b"png"}
    artifact = tmp_path / "artifact.tar.gz"
    artifact.write_bytes(tar_gz([regular("a.png", b"png")]))
    store = SlotStore(tmp_path / "ota")
    manifest = manifest_for(files, artifact.read_bytes())
    data = manifest.to_bytes()
    store.unpack(artifact, store.staging("b"), manifest, data, sign_manifest(key, data))
    store.install_staged("b")
    assert store.verify("b", [key.public_key()]).release == "m1"
    with pytest.raises(SlotError, match="does not verify"):
        store.verify("b", [generate_signing_key().public_key()])
    (store.slot_dir("b") / "a.png").write_bytes(b"PNG")
    with pytest.raises(SlotError, match=r"a\.png differs"):
        store.verify("b", [key.public_key()])
    with pytest.raises(SlotError, match="incomplete"):
        store.verify("a", [key.public_key()])
