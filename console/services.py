"""The audit service: every operator action, from the admin, the REST API or a management command, is
checked against the role map (console/roles.py) and recorded here (who, when, what, on which object, why,
and how it ended), in the same transaction as the action itself.

Surfaces call `operator_action(...)` around the service they run; `audit_record` writes one entry (for
steps that are not an action of their own, such as a restore's dry run).
"""

import getpass
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction

from core.exceptions import ApplicationError

from .models import AuditLogEntry
from .roles import operator_may, role_may

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandActor:
    """Who runs a management command: the OS user, and the operator account of the same name if there is one.

    With an account, its role decides; without, the role CLI_OPERATOR_ROLE (whoever can run manage.py
    holds the database credentials anyway; set it to "support", or "" to refuse every operator action).
    """

    os_user: str
    account: object | None = None

    @classmethod
    def current(cls) -> "CommandActor":
        from django.contrib.auth import get_user_model

        try:
            os_user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
            os_user = "uid-unknown"
        account = get_user_model().objects.filter(username=os_user).first()
        return cls(os_user=os_user, account=account)

    def may(self, permission: str) -> bool:
        if self.account is not None:
            return operator_may(self.account, permission)
        role = settings.CLI_OPERATOR_ROLE
        return bool(role) and role_may(role, permission)

    def __str__(self) -> str:
        return self.os_user


class OperatorForbidden(ApplicationError):
    def __init__(self, actor, permission: str):
        super().__init__(
            "operator_forbidden",
            f"Your operator role does not allow this ({permission} is needed).",
            fields={"permission": [permission]},
            status_code=403,
        )
        self.actor, self.permission = actor, permission


def actor_may(actor, permission: str) -> bool:
    """A user account (admin, API) or a CommandActor (CLI), checked against the one role map."""
    if isinstance(actor, CommandActor):
        return actor.may(permission)
    return operator_may(actor, permission)


def authorize(actor, *permissions: str) -> None:
    """Raise OperatorForbidden (403) unless the actor holds every permission."""
    for permission in permissions:
        if not actor_may(actor, permission):
            logger.warning("operator action refused: %s lacks %s", actor_name(actor), permission)
            raise OperatorForbidden(actor, permission)


def actor_name(actor) -> str:
    """The name an actor is recorded under in the audit log."""
    if isinstance(actor, CommandActor):
        return actor.os_user[:150]
    if getattr(actor, "pk", None):
        return actor.get_username()
    return str(actor or "system")[:150]


def _default_source(actor) -> str:
    if isinstance(actor, CommandActor) or isinstance(actor, str):
        return AuditLogEntry.Source.CLI
    return AuditLogEntry.Source.ADMIN


@transaction.atomic
def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    reason: str = "",
    outcome: str = AuditLogEntry.Outcome.DONE,
    detail: dict | None = None,
    source: str | None = None,
) -> AuditLogEntry:
    """Record one operator action. Call it inside the action's transaction so both commit or neither does.

    `actor`: a user account, a CommandActor, or a name (an OS user). `source`: admin, api or cli (by
    default admin for an account, cli otherwise).
    """
    account = actor.account if isinstance(actor, CommandActor) else actor
    entry = AuditLogEntry.objects.create(
        actor=account if getattr(account, "pk", None) else None,
        actor_username=actor_name(actor),
        source=source or _default_source(actor),
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        reason=(reason or "")[:500],
        outcome=outcome,
        detail=detail or {},
    )
    logger.info("audit %s by=%s via=%s target=%s:%s outcome=%s", action, entry.actor_username, entry.source,
                entry.target_type, entry.target_id, outcome)  # fmt: skip
    return entry


@dataclass
class AuditDraft:
    """What the entry of an action in progress will say: the block may set its target and add detail."""

    target: models.Model | None = None
    detail: dict = field(default_factory=dict)


def error_text(exc: ApplicationError) -> str:
    return "; ".join(message for msgs in exc.fields.values() for message in msgs) or exc.message


@contextmanager
def operator_action(
    *,
    actor,
    permissions: str | tuple[str, ...],
    action: str,
    target: models.Model | None = None,
    reason: str = "",
    detail: dict | None = None,
    source: str | None = None,
) -> Iterator[AuditDraft]:
    """Check the actor against the role map, then run the block and write its audit entry in one
    transaction. A refusal by the service (an ApplicationError) rolls the block back, is recorded as
    refused, and is raised again; a refusal by the role map (OperatorForbidden) is raised before anything.
    """
    authorize(actor, *((permissions,) if isinstance(permissions, str) else permissions))
    draft = AuditDraft(target=target, detail=dict(detail or {}))
    common = {"actor": actor, "action": action, "reason": reason, "source": source}
    target_pk = getattr(target, "pk", None)
    try:
        with transaction.atomic():
            yield draft
            if draft.target is not None and draft.target is target and target.pk is None:
                target.pk = target_pk  # deleted by the block: Django clears the pk, the record names it
            audit_record(target=draft.target, detail=_jsonable(draft.detail), **common)
    except ApplicationError as exc:
        audit_record(target=draft.target, outcome=AuditLogEntry.Outcome.REFUSED,
                     detail={**_jsonable(draft.detail), "error": error_text(exc)}, **common)  # fmt: skip
        raise


def _jsonable(detail: dict) -> dict:
    """The detail as JSON can hold it (ids and datetimes as text)."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(detail, cls=DjangoJSONEncoder, default=str))
