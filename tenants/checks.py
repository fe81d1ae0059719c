"""System checks of the boundary between tenant content and the platform (`manage.py check`, at start)."""

import uuid

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http.request import validate_host


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


@checks.register(checks.Tags.security)
def check_tenant_hosts(app_configs, **kwargs) -> list:
    from .dns_challenge import configured_nameservers
    from .hostnames import normalize_hostname

    errors = []
    platform, preview = settings.PLATFORM_HOST, settings.SITES_PREVIEW_DOMAIN
    try:
        normalize_hostname(preview)
    except ValidationError:
        errors.append(checks.Error(f"SITES_PREVIEW_DOMAIN {preview!r} is not a domain name.", id="tenants.E001"))
    if _under(platform, preview) or _under(preview, platform):
        errors.append(
            checks.Error(
                f"SITES_PREVIEW_DOMAIN {preview!r} and PLATFORM_HOST {platform!r} overlap: tenant pages would share "
                "the platform's origin or cookies.",
                hint="Use a separate registrable domain for previews (e.g. sites.example.net beside api.example.com).",
                id="tenants.E002",
            )
        )
    elif platform.split(".")[-2:] == preview.split(".")[-2:] and not platform.replace(".", "").isdigit():
        errors.append(
            checks.Warning(
                f"SITES_PREVIEW_DOMAIN {preview!r} seems to share a registrable domain with PLATFORM_HOST "
                f"{platform!r}: tenant pages would be same-site with the admin.",
                hint="Use a separate registrable domain for previews, or silence tenants.W001 if the suffix is "
                "a public suffix.",
                id="tenants.W001",
            )
        )
    if validate_host(f"{uuid.UUID(int=0)}.{preview}", [h for h in settings.ALLOWED_HOSTS if h != "*"]):
        errors.append(
            checks.Error(
                "DJANGO_ALLOWED_HOSTS covers the preview domain: those hosts are tenant sites, not the platform.",
                id="tenants.E003",
            )
        )
    if not validate_host(platform, settings.ALLOWED_HOSTS):
        errors.append(checks.Error(f"PLATFORM_HOST {platform!r} is not in DJANGO_ALLOWED_HOSTS.", id="tenants.E004"))
    for name in ("SESSION_COOKIE_DOMAIN", "CSRF_COOKIE_DOMAIN"):
        if getattr(settings, name, None):
            errors.append(
                checks.Error(
                    f"{name} is set: the platform's cookies must be host-only, never sent to other hosts "
                    "(tenant sites included).",
                    id="tenants.E005",
                )
            )
    try:
        configured_nameservers()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="tenants.E006"))
    return errors
