"""Model folders: the manifest is validated and a file is refused unless its sha256 matches."""

from __future__ import annotations

import json

import pytest

from models.litert import MANIFEST_NAME, ManifestError, load_manifest, load_model, verify_entry
from tests.models.litert.conftest import make_folder


def test_a_listed_file_verifies_and_loads(model_folder):
    manifest = load_manifest(model_folder)
    entry = manifest.entry("recognizer", model_folder)
    assert verify_entry(model_folder, entry) == model_folder / entry.file
    model = load_model(model_folder, "recognizer")
    assert model.entry == entry


def test_a_tampered_file_is_refused_before_loading_naming_both_digests(model_folder):
    entry = load_manifest(model_folder).models["recognizer"]
    path = model_folder / entry.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError) as err:
        load_model(model_folder, "recognizer")
    message = str(err.value)
    assert str(path) in message and entry.sha256 in message
    assert "sha256 is " in message
    actual = message.split("sha256 is ")[1].split(",", maxsplit=1)[0]
    assert len(actual) == 64 and actual != entry.sha256


def test_missing_file_manifest_and_model_name_are_explained(tmp_path, model_folder):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nowhere")
    with pytest.raises(ManifestError, match=r"no model named 'detector' \(it has: recognizer\)"):
        load_model(model_folder, "detector")
    (model_folder / "tiny_ctc_int8.tflite").unlink()
    with pytest.raises(ManifestError, match=r"listed in .* but does not exist"):
        load_model(model_folder, "recognizer")


def test_invalid_manifests_are_refused(model_folder):
    path = model_folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["models"]["recognizer"]["sha256"] = "not-a-digest"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="not a valid manifest"):
        load_manifest(model_folder)
    data["schema"] = 99
    data["models"] = {}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="schema 99"):
        load_manifest(model_folder)


def test_upsert_keeps_the_other_models(tmp_path):
    folder = make_folder(tmp_path / "m")
    make_folder(folder, "tiny_ctc_int8io.tflite", name="other")
    manifest = load_manifest(folder)
    assert sorted(manifest.models) == ["other", "recognizer"]
    assert manifest.models["other"].file == "tiny_ctc_int8io.tflite"


def test_an_ota_release_manifest_is_not_taken_for_a_model_folder(tmp_path):
    release = {"format": 1, "release": "models-7", "kind": "models", "files": [], "selftest": []}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(release))
    with pytest.raises(ManifestError, match="OTA release manifest"):
        load_manifest(tmp_path)
