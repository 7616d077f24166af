"""Fixtures of the agent's tests: a paho client as the server, agents run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from tests.edge_agent.fleethelpers import RunningAgent, Server, agent_config
from tests.edge_agent.helpers import QuickReader


@pytest.fixture
def server(mosquitto) -> Iterator[Server]:
    s = Server(mosquitto)
    yield s
    s.close()


@pytest.fixture
def start_agent(mosquitto, tmp_path: Path) -> Iterator[Any]:
    running: list[RunningAgent] = []

    def start(config: AgentConfig | None = None, **kw: Any) -> RunningAgent:
        kw.setdefault("reader", QuickReader())
        r = RunningAgent(Agent(config or agent_config(tmp_path, mosquitto.port), **kw))
        running.append(r)
        r.wait_connected()
        return r

    yield start
    for r in running:
        if r.thread.is_alive():
            r.stop()
