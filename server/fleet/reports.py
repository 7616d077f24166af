"""What ingest writes for the fleet: telemetry history, reported configuration, command results.

Called by `server.ingest.service.ingest_batch` inside the batch's transaction (it flushes, the
worker commits and then acks). Redelivery is harmless: a reported configuration older than the
one stored is ignored, a command keeps its first final result (progress reports before it are
replaced, any result after it is ignored), and a repeated heartbeat only adds a
sample to a history that is pruned to its last N in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from server.fleet.repository import DeviceReportRepository, Sample
from server.ingest.interpret import (
    UNKNOWN_COMMAND,
    CommandResultSeen,
    ConfigReportedSeen,
    Outcome,
    Refused,
    TelemetrySeen,
)

logger = logging.getLogger(__name__)

#: Heartbeats kept per device unless the ingest settings say otherwise (a day at 30 s).
DEFAULT_HISTORY = 2880


@dataclass
class ReportResult:
    telemetry: int = 0
    configs: int = 0
    command_results: int = 0
    refused: list[Refused] = field(default_factory=list)


def record_reports(
    session: Session, outcomes: Sequence[Outcome], history: int = DEFAULT_HISTORY
) -> ReportResult:
    """Write the fleet's part of one batch; returns counts and the refusals to dead-letter."""
    repo = DeviceReportRepository(session)
    result = ReportResult()
    samples = [
        Sample(o.device.pk, o.device.organization_id, o.received_at, o.snapshot)
        for o in outcomes
        if isinstance(o, TelemetrySeen)
    ]
    repo.add_telemetry(samples, keep=history)
    result.telemetry = len(samples)
    for o in outcomes:
        if isinstance(o, ConfigReportedSeen):
            r = o.report
            stored = repo.apply_config_report(
                o.device.pk,
                o.device.organization_id,
                version=r.version,
                settings=dict(r.settings),
                rejected=dict(r.rejected),
                at=o.received_at,
            )
            result.configs += 1
            logger.info(
                "device %s reports config version %d%s%s",
                o.device.device_id,
                r.version,
                f" ({len(r.rejected)} settings rejected)" if r.rejected else "",
                "" if stored else " (older than the one stored: ignored)",
            )
        elif isinstance(o, CommandResultSeen):
            res = o.result
            outcome = repo.record_command_result(
                o.device.pk,
                res.command_id,
                {
                    "status": res.status,
                    "detail": res.detail,
                    "output": dict(res.output),
                    "finished_at": res.finished_at,
                    "result_at": o.received_at,
                },
            )
            if outcome == "unknown":
                result.refused.append(
                    Refused(
                        o.topic,
                        o.device.device_id,
                        UNKNOWN_COMMAND,
                        f"no command {res.command_id} was sent to device {o.device.device_id}",
                        o.payload,
                        o.received_at,
                    )
                )
                continue
            result.command_results += 1
            logger.info(
                "command %s on %s: %s%s",
                res.command_id,
                o.device.device_id,
                res.status,
                "" if outcome == "recorded" else " (after its final result: ignored)",
            )
    return result
