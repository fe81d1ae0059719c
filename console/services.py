"""Writes for the operator console: the audit log."""

import logging

from django.db import models, transaction

from .models import AuditLogEntry

logger = logging.getLogger(__name__)


@transaction.atomic
def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    reason: str = "",
    outcome: str = AuditLogEntry.Outcome.DONE,
    detail: dict | None = None,
) -> AuditLogEntry:
    """Record one operator action. Call it inside the action's transaction so both commit or neither does."""
    entry = AuditLogEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_username=actor.get_username() if getattr(actor, "pk", None) else str(actor or "system")[:150],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        reason=(reason or "")[:500],
        outcome=outcome,
        detail=detail or {},
    )
    logger.info("audit %s by=%s target=%s:%s outcome=%s", action, entry.actor_username, entry.target_type,
                entry.target_id, outcome)  # fmt: skip
    return entry
