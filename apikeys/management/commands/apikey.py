"""`manage.py apikey create|list|revoke`: the operator's key tools. The full key is printed once."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys import selectors, services
from apikeys.models import ApiKey
from apikeys.scopes import SCOPES
from platform_site.exceptions import ApplicationError
from tenants.models import Tenant


def _error_line(exc: ApplicationError) -> str:
    details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.fields.items())
    return f"{exc.message} {details}".strip()


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it once")
        create.add_argument("--tenant", required=True, help="tenant slug")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--scope", action="append", required=True, dest="scopes", help=f"repeatable; one of {', '.join(SCOPES)}"
        )
        create.add_argument("--expires-in-days", type=int)
        create.add_argument("--rate-limit", type=int, help="requests a minute instead of the tier's")
        listing = sub.add_parser("list", help="list keys (prefix and last four only)")
        listing.add_argument("--tenant", help="tenant slug")
        revoke = sub.add_parser("revoke", help="revoke a key by its id")
        revoke.add_argument("key_id")
        revoke.add_argument("--reason", default="")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ApplicationError as exc:
            raise CommandError(_error_line(exc)) from exc

    def _tenant(self, slug):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        return tenant

    def _create(self, *, tenant, name, scopes, expires_in_days, rate_limit, **_):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        api_key, raw_key = services.apikey_create(
            tenant=self._tenant(tenant),
            name=name,
            scopes=scopes,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit,
        )
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

    def _revoke(self, *, key_id, reason, **_):
        try:
            api_key = ApiKey.objects.get(pk=key_id)
        except (ApiKey.DoesNotExist, ValidationError, ValueError) as exc:
            raise CommandError(f"no API key with id {key_id!r}") from exc
        services.apikey_revoke(api_key=api_key, revoked_by="command:apikey", reason=reason)
        self.stdout.write(f"revoked key id={api_key.pk} ({api_key.display})")
