"""Runs an agent with the quick reader in its own process (crash tests): run_agent.py CONFIG."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.config import load_config
from tests.edge_agent.helpers import QuickReader

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    agent = Agent(load_config(Path(sys.argv[1])), reader=QuickReader())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    agent.run()
