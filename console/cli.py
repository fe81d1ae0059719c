"""Operator actions from management commands: the same role map and audit log as the admin and the API.

A command that changes something takes `--reason` (recorded with the OS user that ran it) and runs its
service inside `command_action(...)`: a shell user whose name is an operator account's acts with that
account's role; any other with CLI_OPERATOR_ROLE. A refusal is one line on stderr and a non-zero exit.
"""

import logging
from contextlib import contextmanager

from django.core.management.base import CommandError
from django.db import DatabaseError

from core.exceptions import ApplicationError

from .models import AuditLogEntry
from .services import AuditDraft, CommandActor, OperatorForbidden, audit_record, authorize, operator_action

logger = logging.getLogger(__name__)


def add_reason_argument(parser, *, required: bool = True) -> None:
    parser.add_argument(
        "--reason",
        required=required,
        default="",
        help="why: recorded in the audit log with your OS user and the time" + ("" if required else " (optional)"),
    )


@contextmanager
def command_action(
    *, permissions, action: str, reason: str, target=None, detail: dict | None = None, reason_required: bool = True
):
    """Run the block as an audited operator action of the shell user; CommandError when refused."""
    actor = CommandActor.current()
    if reason_required and not (reason or "").strip():
        raise CommandError("--reason is required: say why (it goes to the audit log)")
    try:
        with operator_action(actor=actor, permissions=permissions, action=action, target=target,
                             reason=reason.strip(), detail=detail, source="cli") as audit:  # fmt: skip
            yield audit
    except OperatorForbidden as exc:
        who = f"operator account {actor.account}" if actor.account is not None else "no operator account"
        raise CommandError(f"refused: OS user {actor.os_user!r} ({who}) may not do this ({exc.permission})") from exc
    except ApplicationError as exc:
        raise CommandError(command_error_line(exc)) from exc


def command_error_line(exc: ApplicationError) -> str:
    """One line: the message and each field's errors."""
    details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.fields.items())
    return f"{exc.message} {details}".strip()


@contextmanager
def command_job(*, permissions, action: str, reason: str, detail: dict | None = None):
    """For long jobs that must not run inside one transaction (a backup writes its progress as it goes):
    the role is checked first, the outcome recorded when the job ends, failed or not."""
    actor = CommandActor.current()
    try:
        authorize(actor, *((permissions,) if isinstance(permissions, str) else permissions))
    except OperatorForbidden as exc:
        raise CommandError(f"refused: OS user {actor.os_user!r} may not do this ({exc.permission})") from exc
    draft = AuditDraft(detail=dict(detail or {}))
    common = {"actor": actor, "action": action, "reason": (reason or "").strip(), "source": "cli"}
    try:
        yield draft
    except BaseException as exc:
        error = exc.message if isinstance(exc, ApplicationError) else f"{exc.__class__.__name__}: {exc}"
        try:
            audit_record(outcome=AuditLogEntry.Outcome.REFUSED, detail={**draft.detail, "error": error[:500]}, **common)
        except DatabaseError:
            # The job failed because the database went away: its own error says so, not the audit's.
            logger.error("audit of %s not recorded: the database is unavailable", action)
        raise
    audit_record(detail=draft.detail, **common)
