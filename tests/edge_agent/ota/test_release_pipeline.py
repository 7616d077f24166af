"""The pipeline a models release asks for: its pipeline.yaml over the agent's, paths in the slot."""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.agent import Agent
from tests.edge_agent.fleethelpers import agent_config
from tests.edge_agent.helpers import QuickReader


def test_release_settings_override_the_file_but_not_the_threads(tmp_path: Path) -> None:
    config = agent_config(tmp_path, 1883, pipeline={"threads": 2, "max_side": 1200})
    agent = Agent(config, reader=QuickReader())
    try:
        slot = tmp_path / "ota" / "models" / "slots" / "a"
        slot.mkdir(parents=True)
        assert agent.pipeline_config(slot) == config.pipeline, "no pipeline.yaml: the file's"
        (slot / "pipeline.yaml").write_text(
            "max_side: 900\nthreads: 8\nocr: {type: tesseract, psm: 6}\n"
        )
        pipeline = agent.pipeline_config(slot)
        assert pipeline.max_side == 900 and pipeline.ocr.psm == 6
        assert pipeline.threads == 2, "threads are the device's, not the release's"
        assert agent.pipeline_config(None) == config.pipeline
    finally:
        agent.outbox.close()
        logging.getLogger().removeHandler(agent.ring)


def test_relative_model_paths_are_taken_from_the_slot() -> None:
    from edge_agent.release_pipeline import in_slot

    slot = Path("/data/ota/models/slots/b")
    data = {"ocr": {"type": "litert", "model_dir": "litert"}, "find_receipt": False}
    assert in_slot(data, slot)["ocr"]["model_dir"] == "/data/ota/models/slots/b/litert"
    absolute = {"ocr": {"model_dir": "/opt/models"}}
    assert in_slot(absolute, slot) == absolute
