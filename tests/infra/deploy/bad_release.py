"""A bad release for the rollback test: the real API with a regression in its receipts
endpoints (every call raises: 500), which /ready does not see.

Run: python -m tests.infra.deploy.bad_release PORT (the environment holds the RM_* settings).
"""

from __future__ import annotations

import sys

import uvicorn

from server.api.app import create_app
from server.api.deps import receipts_repository
from server.settings import Settings


def _regression() -> None:
    raise RuntimeError("regression: the receipts repository cannot be built")


def main() -> None:
    app = create_app(Settings())
    app.dependency_overrides[receipts_repository] = _regression
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical")


if __name__ == "__main__":
    main()
