"""`opsmon rollback status` and `GET /api/rollback`: per service its current and last known
good images, freeze and rollback in flight; then the recent rollbacks. No snapshot content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.rollback.snapshot import short_id

if TYPE_CHECKING:
    from monitor.rollback.coordinator import Coordinator


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_document(
    coordinator: Coordinator,
    services: Sequence[str],
    now: datetime,
    owners: Mapping[str, str | None],
) -> dict[str, Any]:
    """Everything `rollback status` shows, as JSON-ready data; `owners`: who owns each
    service's rollback (monitor/rollback/lease.py `owners`)."""
    store, journal = coordinator.store, coordinator.journal
    rows = []
    for service in services:
        settings = coordinator.config.services.get(service)
        deploy = store.latest_deploy(service)
        lkg = store.lkg(service)
        frozen = store.frozen(service)
        flight = coordinator.in_flight(service)
        rows.append(
            {
                "service": service,
                "strategy": settings.strategy.value if settings is not None else None,
                "current": None
                if deploy is None
                else {
                    "image": deploy.image,
                    "image_id": short_id(deploy.image_id),
                    "container": deploy.container_name,
                    "since": _time(deploy.started_at),
                    "origin": deploy.origin,
                    "status": deploy.status,
                },
                "last_known_good": None
                if lkg is None
                else {
                    "image": lkg.image,
                    "image_id": short_id(lkg.image_id),
                    "since": _time(lkg.promoted_at),
                },
                # Who owns the service's rollback now (a deploy gate, the daemon, an operator).
                "owned_by": owners.get(service),
                "frozen": None
                if frozen is None
                else {"reason": frozen.reason, "since": _time(frozen.since)},
                "bad_images": [
                    {
                        "image": b.image,
                        "image_id": short_id(b.image_id),
                        "since": _time(b.marked_at),
                    }
                    for b in store.bad_images(service)
                ],
                "in_flight": flight.id if flight is not None else None,
            }
        )
    recent = [
        {
            "id": r.id,
            "service": r.service,
            "trigger": r.trigger,
            "strategy": r.strategy,
            "status": r.status.value,
            "step": r.step.value,
            "from": r.bad_image,
            "to": r.target_image,
            "reason": r.reason,
            "outcome": r.outcome,
            "started_at": _time(r.started_at),
            "finished_at": _time(r.finished_at),
            "duration_seconds": r.duration,
        }
        for r in journal.recent(limit=20)
        if r.service in services
    ]
    return {
        "enabled": True,
        "mode": coordinator.config.mode.value,
        "now": now.isoformat(),
        "services": rows,
        "rollbacks": recent,
    }


def render_status(document: dict[str, Any]) -> str:
    """The status as text for a terminal."""
    lines = [f"mode: {document['mode']}"]
    for row in document["services"]:
        current, lkg, frozen = row["current"], row["last_known_good"], row["frozen"]
        lines.append("")
        lines.append(f"{row['service']} ({row['strategy']})")
        lines.append(
            "  running:          "
            + (
                f"{current['image']} ({current['image_id']}) since {current['since']}"
                if current
                else "-"
            )
        )
        lines.append(
            "  last known good:  "
            + (f"{lkg['image']} ({lkg['image_id']}) since {lkg['since']}" if lkg else "none yet")
        )
        lines.append(
            "  automation:       "
            + (f"FROZEN since {frozen['since']}: {frozen['reason']}" if frozen else "on")
        )
        if row["bad_images"]:
            bad = ", ".join(f"{b['image']} ({b['image_id']})" for b in row["bad_images"])
            lines.append(f"  bad images:       {bad}")
        if row["in_flight"]:
            lines.append(f"  in flight:        rollback {row['in_flight']}")
        if row.get("owned_by"):
            lines.append(f"  owned by:         {row['owned_by']}")
    if document["rollbacks"]:
        lines += ["", "recent rollbacks:"]
        for r in document["rollbacks"]:
            took = f" in {r['duration_seconds']:.1f}s" if r["duration_seconds"] else ""
            lines.append(
                f"  {r['started_at']}  {r['service']}  {r['status']}{took}  "
                f"{r['from']} -> {r['to']}  ({r['trigger']}, {r['id']})"
            )
            lines.append(f"      {r['reason']}")
    return "\n".join(lines)
