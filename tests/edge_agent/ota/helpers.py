"""Releases for the OTA tests, and a quick reader whose "model" is a JSON file in the slot."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from edge_agent.ota.config import OtaConfig
from models.pipeline import PipelineConfig
from models.protocol import Command, CommandResult
from models.receipt import MoneyField, Receipt, ReceiptFields
from provisioning.release import Release, SelfTestCase, build_release
from provisioning.signing import public_key_pem
from tests.edge_agent.helpers import QuickResult

BASE = "https://updates.test/"


def write_png(path: Path, level: int = 230) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((40, 60, 3), level, np.uint8))


def make_release(
    tmp: Path, key: Any, name: str, model: dict[str, Any] | None = None, expect: str = "14.64"
) -> Release:
    """A models release whose model.json tells `ModelReader` what to read."""
    src = tmp / "src" / name
    write_png(src / "selftest" / "r1.png")
    (src / "model.json").write_text(json.dumps(model or {"total": "14.64"}))
    return build_release(
        src,
        tmp / "releases" / f"{name}.tar.gz",
        release=name,
        kind="models",
        selftest=[SelfTestCase(image="selftest/r1.png", expect={"total": expect})],
        key=key,
    )


class ModelReader:
    """Reads `total` from its model file; with ``fail_dark`` it raises on dark images."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.model = model

    def read(self, image: np.ndarray) -> QuickResult:
        if self.model.get("fail_dark") and float(image.mean()) < 100:
            raise RuntimeError("model crashed on a real scan")
        total = MoneyField(value=Decimal(self.model["total"]), confidence=0.9)
        return QuickResult(Receipt(fields=ReceiptFields(total=total)), image)


class FakeHost:
    """The agent's side of the updater, recorded."""

    def __init__(self) -> None:
        self.reader: ModelReader | None = None
        self.models_dir: Path | None = None
        self.restarts = 0

    def build_reader(self, models_dir: Path | None) -> ModelReader:
        if models_dir is None:
            return ModelReader({"total": "14.64", "factory": True})
        return ModelReader(json.loads((models_dir / "model.json").read_text()))

    def activate_reader(self, reader: Any, models_dir: Path | None) -> Any:
        previous, self.reader, self.models_dir = self.reader, reader, models_dir
        return previous

    def pipeline_json(self, models_dir: Path | None) -> str:
        return PipelineConfig().model_dump_json()

    def request_restart(self) -> None:
        self.restarts += 1


def ota_config(tmp: Path, key: Any, **kw: Any) -> OtaConfig:
    pub = tmp / "release-key.pem"
    pub.parent.mkdir(parents=True, exist_ok=True)
    pub.write_bytes(public_key_pem(key))
    return OtaConfig(dir=tmp / "ota", public_keys=[pub], **kw)


def serve(releases: list[Release], log: list[str] | None = None) -> httpx.MockTransport:
    """An httpx transport serving the releases' artifacts under `BASE`."""
    artifacts = {r.artifact_path.name: r.artifact_path.read_bytes() for r in releases}

    def handler(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append(str(request.url))
        data = artifacts.get(request.url.path.lstrip("/"))
        return httpx.Response(200, content=data) if data is not None else httpx.Response(404)

    return httpx.MockTransport(handler)


def ota_command(release: Release, url: str | None = None, **change: Any) -> Command:
    url = url or BASE + release.artifact_path.name
    args = release.ota_args(url).model_dump() | change
    return Command(command_id=uuid.uuid4(), name="ota", args=args)


def statuses(results: list[CommandResult]) -> list[str]:
    return [r.status if r.status != "in_progress" else r.detail for r in results]


FAKE_SELFTEST = '''"""Stands in for edge_agent.ota.selftest in an agent release's code (tests)."""
import json
import sys

print(json.dumps({"passed": PASSED, "cases": [], "ms": 1.0, "code": "new agent"}))
sys.exit(0 if PASSED else 1)
'''


def make_agent_release(tmp: Path, key: Any, name: str, passes: bool = True) -> Release:
    """An agent release whose code is a stand-in self-test that passes or fails."""
    src = tmp / "src" / name
    write_png(src / "selftest" / "r1.png")
    (src / "model.json").write_text(json.dumps({"total": "14.64"}))
    pkg = src / "python" / "edge_agent" / "ota"
    pkg.mkdir(parents=True)
    (src / "python" / "edge_agent" / "__init__.py").write_text(f"__version__ = {name!r}\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "selftest.py").write_text(FAKE_SELFTEST.replace("PASSED", str(passes)))
    return build_release(
        src,
        tmp / "releases" / f"{name}.tar.gz",
        release=name,
        kind="agent",
        selftest=[SelfTestCase(image="selftest/r1.png", expect={"total": "14.64"})],
        key=key,
    )
