"""Runs an agent in its own process (crash and fleet tests): run_agent.py CONFIG [--pipeline].

With the quick reader by default; ``--pipeline`` reads with the real pipeline (OTA tests). Exits
with the agent's exit status (75 after a restart command), as `receipts agent` does.
"""

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
    config = load_config(Path(sys.argv[1]))
    agent = Agent(config) if "--pipeline" in sys.argv[2:] else Agent(config, reader=QuickReader())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    agent.run()
    sys.exit(agent.exit_code)
