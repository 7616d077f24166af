"""What the fleet needs at run time, built once where the program starts (`build_runtime`)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from provisioning.ca import CertificateAuthority
from provisioning.mosquitto import (
    BrokerAuth,
    CommandReloader,
    MosquittoError,
    Reloader,
    SignalReloader,
)
from server.fleet.broker_sync import BrokerSync
from server.fleet.publisher import PahoPublisher, Publisher
from server.fleet.repository import FleetRepository
from server.fleet.settings import FleetSettings
from server.settings import Settings

logger = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FleetRuntime:
    """Sessions, the MQTT publisher, the broker mirror and the CA, passed to the fleet's code."""

    settings: FleetSettings
    sessions: sessionmaker[Session]
    publisher: Publisher
    broker_sync: BrokerSync | None = None
    ca: CertificateAuthority | None = None
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    #: Key of the artifact links (`server.fleet.releases`); from RM_SECRET_KEY.
    url_key: bytes | None = None

    @contextmanager
    def transaction(self, organization_id: uuid.UUID) -> Iterator[FleetRepository]:
        """One transaction on one organisation's fleet: committed unless the block raises."""
        with self.sessions.begin() as session:
            yield FleetRepository(session, organization_id)

    def sync_broker(self) -> bool:
        """Mirror the registry to the broker now; False (logged) if it could not."""
        if self.broker_sync is None:
            return False
        try:
            return self.broker_sync.sync()
        except (MosquittoError, OSError, SQLAlchemyError) as exc:
            logger.error(
                "broker auth not updated (%s); run 'receipts provision sync-broker' once the "
                "cause is fixed",
                exc,
            )
            return False


def build_reloader(settings: FleetSettings) -> Reloader | None:
    if settings.broker_pid_file is not None:
        return SignalReloader(pid_file=settings.broker_pid_file)
    if settings.broker_reload_command:
        return CommandReloader(settings.broker_reload_command)
    return None


def build_broker_sync(
    settings: FleetSettings, sessions: sessionmaker[Session], ca: CertificateAuthority | None
) -> BrokerSync | None:
    if settings.broker_auth_dir is None:
        return None
    auth = BrokerAuth(
        settings.broker_auth_dir, build_reloader(settings), settings.broker_auth_file_mode
    )
    return BrokerSync(auth, sessions, ca)


def load_ca(settings: FleetSettings) -> CertificateAuthority | None:
    return CertificateAuthority.load(settings.ca_dir) if settings.ca_dir is not None else None


def build_runtime(
    settings: Settings, sessions: sessionmaker[Session], publisher: Publisher | None = None
) -> FleetRuntime:
    """The runtime for `settings`: CA loaded, broker mirror and publisher configured."""
    fleet = settings.fleet
    ca = load_ca(fleet)
    return FleetRuntime(
        settings=fleet,
        sessions=sessions,
        publisher=publisher or PahoPublisher(settings.mqtt, timeout_s=fleet.publish_timeout_s),
        broker_sync=build_broker_sync(fleet, sessions, ca),
        ca=ca,
        url_key=settings.secret_key.get_secret_value().encode() if settings.secret_key else None,
    )
