"""Mirror the registry into the broker's auth files (password file, ACL, CRL) and reload it.

`BrokerSync.sync()` reads the active broker accounts and the revoked certificates in a
transaction of its own, renders the files and, if they differ from what was last written,
writes them atomically and reloads the broker (`provisioning.mosquitto.BrokerAuth`). Call it
after the transaction that changed the registry has committed (claim, rotate, revoke).

Writers take an exclusive lock on the folder, then read the registry: whoever holds the lock
last read a state that includes every commit made before it got the lock, so concurrent
writers (API replicas, the CLI) leave the newest state on disk, never an older one. This needs
the writers to share the folder (one host or one volume); ``receipts provision sync-broker
--every N`` beside the broker also repairs any missed change and refreshes the CRL.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from provisioning.ca import CertificateAuthority
from provisioning.mosquitto import BrokerAuth, render_acl, render_password_file
from server.fleet.repository import RegistryRepository

logger = logging.getLogger(__name__)

LOCK_FILE = ".sync.lock"
STATE_FILE = ".sync.state"
#: A CRL is valid 30 days (`build_crl`); rewrite it well before, even with nothing revoked anew.
CRL_REFRESH = dt.timedelta(days=1)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BrokerSync:
    """Regenerates the broker's auth files from the registry; see the module docstring."""

    def __init__(
        self,
        auth: BrokerAuth,
        sessions: sessionmaker[Session],
        ca: CertificateAuthority | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.auth = auth
        self.sessions = sessions
        self.ca = ca
        self.clock = clock

    @property
    def directory(self) -> Path:
        return self.auth.directory

    def sync(self, *, force: bool = False) -> bool:
        """Bring the files in line with the registry; True if they were rewritten."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._sync_locked(force)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync_locked(self, force: bool) -> bool:
        now = self.clock()
        with self.sessions.begin() as session:
            repo = RegistryRepository(session)
            accounts = repo.active_accounts()
            revocations = repo.revocations(now) if self.ca is not None else []
        digest = hashlib.sha256()
        digest.update(render_password_file(accounts).encode())
        digest.update(render_acl(accounts).encode())
        for r in revocations:
            digest.update(f"{r.serial:x}@{r.revoked_at.isoformat()}\n".encode())
        state = digest.hexdigest()
        state_file = self.directory / STATE_FILE
        if not force and self._unchanged(state_file, state, now):
            return False
        crl = self.ca.build_crl(revocations) if self.ca is not None else None
        self.auth.apply(accounts, crl_pem=crl)
        state_file.write_text(state + "\n")
        logger.info(
            "broker auth synced: %d accounts, %d revoked certificates",
            len(accounts),
            len(revocations),
        )
        return True

    def _unchanged(self, state_file: Path, state: str, now: dt.datetime) -> bool:
        try:
            previous = state_file.read_text().strip()
            written = dt.datetime.fromtimestamp(state_file.stat().st_mtime, dt.UTC)
        except OSError:
            return False
        fresh = self.ca is None or now - written < CRL_REFRESH
        return previous == state and fresh and self.auth.password_file.exists()

    def run_every(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Sync now and then every `seconds` until `stop()` (the CLI's ``--every``)."""
        while True:
            try:
                self.sync()
            except Exception:
                logger.exception("broker auth sync failed; trying again in %.0f s", seconds)
            if stop():
                return
            time.sleep(seconds)
