"""`manage.py apikey create|list|revoke`: the operator's key tools. The full key is printed once."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys import selectors, services
from apikeys.scopes import SCOPES
from console.cli import add_reason_argument, command_action, command_error_line
from console.services import CommandActor
from console.terminal import add_yes_argument, confirm
from core.exceptions import ApplicationError
from tenants import selectors as tenant_selectors


def audit_os_user() -> str:
    return CommandActor.current().os_user


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it once")
        create.add_argument("--tenant", required=True, help="tenant slug or id")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--scope", action="append", required=True, dest="scopes", help=f"repeatable; one of {', '.join(SCOPES)}"
        )
        create.add_argument("--expires-in-days", type=int)
        create.add_argument("--rate-limit", type=int, help="requests a minute, lower than the tenant's limit")
        add_reason_argument(create, required=False)
        listing = sub.add_parser("list", help="list keys (prefix and last four only)")
        listing.add_argument("--tenant", help="tenant slug or id")
        revoke = sub.add_parser("revoke", help="revoke a key named by its id, its prefix and last four, or its name")
        revoke.add_argument(
            "key", help="the key's id, what lists show of it (plk_live_…x9Qa; ... for …), or its name (with --tenant)"
        )
        revoke.add_argument("--tenant", help="tenant slug or id: required to name a key by its name; narrows the rest")
        add_reason_argument(revoke)
        add_yes_argument(revoke)

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ApplicationError as exc:
            raise CommandError(command_error_line(exc)) from exc

    def _tenant(self, reference):
        try:
            return tenant_selectors.tenant_find(reference=reference)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, *, tenant, name, scopes, expires_in_days, rate_limit, reason, **_):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        tenant = self._tenant(tenant)
        detail = {"tenant": str(tenant.pk), "scopes": scopes, "rate_limit_per_minute": rate_limit}
        with command_action(permissions="apikeys.add_apikey", action="apikey.create", reason=reason,
                            detail=detail, reason_required=False) as audit:  # fmt: skip
            api_key, raw_key = services.apikey_create(
                tenant=tenant,
                name=name,
                scopes=scopes,
                expires_at=expires_at,
                rate_limit_per_minute=rate_limit,
            )
            audit.target = api_key
        self.stdout.write(f"created key id={api_key.pk} for tenant {api_key.tenant.slug}")
        self.stdout.write("copy the key now; it is not shown again:")
        self.stdout.write(raw_key)

    def _list(self, *, tenant, **_):
        keys = selectors.apikey_list(tenant=self._tenant(tenant) if tenant else None)
        for api_key in keys:
            state = "active" if api_key.is_active else ("revoked" if api_key.revoked_at else "expired")
            self.stdout.write(
                f"{api_key.pk}  {api_key.display}  {api_key.tenant.slug}  {api_key.name!r}  {state}  "
                f"scopes={','.join(api_key.scopes)}  last_used={api_key.last_used_at or '-'}"
            )

    def _revoke(self, *, key, tenant, reason, yes, **_):
        tenant = self._tenant(tenant) if tenant else None
        try:
            api_key = selectors.apikey_find(reference=key, tenant=tenant)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not reason.strip():
            raise CommandError("--reason is required: say why (it goes to the audit log)")
        confirm(
            f"Revoke key {api_key.display} ({api_key.name!r}) of tenant {api_key.tenant.slug}? "
            "It is refused from the next request, for good.",
            yes=yes,
            refusal="to revoke",
        )
        with command_action(permissions="console.revoke_apikey", action="apikey.revoke", reason=reason,
                            target=api_key):  # fmt: skip
            services.apikey_revoke(api_key=api_key, revoked_by=f"command:{audit_os_user()}", reason=reason)
        self.stdout.write(f"revoked key id={api_key.pk} ({api_key.display})")
