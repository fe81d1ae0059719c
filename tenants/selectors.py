"""Reads for tenants, websites and deployments."""

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from .models import Deployment, Hostname, Tenant, Website


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.order_by("name")


def tenant_get(*, tenant_id) -> Tenant:
    return get_object_or_404(Tenant, pk=tenant_id)


def website_list(*, tenant: Tenant | None = None) -> QuerySet[Website]:
    """Websites, limited to one tenant's when a tenant is given (API keys act for one tenant)."""
    queryset = Website.objects.select_related("tenant", "active_deployment").prefetch_related(
        Prefetch("hostnames", queryset=Hostname.objects.order_by("hostname"))
    )
    return queryset.filter(tenant=tenant) if tenant is not None else queryset


def website_get(*, website_id, tenant: Tenant | None = None) -> Website:
    """One website; 404 when it belongs to another tenant, so existence never leaks."""
    return get_object_or_404(website_list(tenant=tenant), pk=website_id)


def website_served_hostnames(*, website: Website) -> list[str]:
    """The custom hostnames a website is served under: its verified ones (its preview host besides)."""
    return list(
        Hostname.objects.filter(website=website, status=Hostname.Status.VERIFIED)
        .order_by("hostname")
        .values_list("hostname", flat=True)
    )


def hostnames_verified_elsewhere(*, hostnames: list[str], website_id) -> list[str]:
    """Which of these (normalised) hostnames another website holds verified."""
    return list(
        Hostname.objects.filter(hostname__in=hostnames, status=Hostname.Status.VERIFIED)
        .exclude(website_id=website_id)
        .values_list("hostname", flat=True)
    )


def website_hostname_get(*, website: Website, hostname: str) -> Hostname:
    """One hostname of a website, by name (any case, Unicode or punycode); 404 when it has no such one."""
    from django.core.exceptions import ValidationError
    from django.http import Http404

    from .hostnames import normalize_hostname

    try:
        normalized = normalize_hostname(hostname)
    except ValidationError as exc:
        raise Http404 from exc
    return get_object_or_404(Hostname, website=website, hostname=normalized)


def website_public_url(*, website: Website) -> str:
    """Where visitors find the website: its first verified custom hostname, else its preview host."""
    from django.conf import settings

    from .hostnames import preview_host

    verified = sorted(h.hostname for h in website.hostnames.all() if h.status == Hostname.Status.VERIFIED)
    host = verified[0] if verified else preview_host(website.pk)
    port = f":{settings.SITES_PUBLIC_PORT}" if settings.SITES_PUBLIC_PORT else ""
    return f"{settings.SITES_PUBLIC_SCHEME}://{host}{port}/"


def deployment_list(*, website: Website) -> QuerySet[Deployment]:
    return website.deployments.select_related("website").prefetch_related("website__hostnames").order_by("-number")


def deployment_rollback_target(*, website: Website) -> Deployment | None:
    """The deployment a rollback without a target serves again: the latest successful one before the
    active one that holds other files (deployment_rollback uses this; the console names it before)."""
    active = website.active_deployment
    if active is None:
        return None
    return (
        website.deployments.filter(status=Deployment.Status.SUCCEEDED, number__lt=active.number)
        .exclude(storage_prefix="")
        .exclude(storage_prefix=active.storage_prefix)
        .order_by("-number")
        .first()
    )


def deployment_get(*, deployment_id, tenant: Tenant | None = None) -> Deployment:
    queryset = Deployment.objects.select_related("website", "website__tenant").prefetch_related("website__hostnames")
    if tenant is not None:
        queryset = queryset.filter(website__tenant=tenant)
    return get_object_or_404(queryset, pk=deployment_id)


def tenant_find(*, reference: str) -> Tenant:
    """A tenant by slug or id, for commands; ValueError with a clear message."""
    import uuid

    reference = (reference or "").strip()
    tenant = Tenant.objects.filter(slug=reference).first()
    if tenant is None:
        try:
            tenant = Tenant.objects.filter(pk=uuid.UUID(reference)).first()
        except ValueError:
            tenant = None
    if tenant is None:
        raise ValueError(f"no tenant with slug or id {reference!r}")
    return tenant


def website_find(*, reference: str) -> Website:
    """A website by id, hostname, (unique) name or `tenant-slug/name`, for commands; ValueError with a
    clear message."""
    import uuid

    queryset = website_list()
    tenant_slug, slash, name = reference.partition("/")
    if slash and name and Tenant.objects.filter(slug=tenant_slug).exists():
        queryset = queryset.filter(tenant__slug=tenant_slug)
        reference = name
    try:
        website = queryset.filter(pk=uuid.UUID(reference)).first()
    except ValueError:
        website = None
    if website is None:
        website = queryset.filter(hostnames__hostname=reference.strip().lower().rstrip(".")).first()
    if website is None:
        matches = list(queryset.filter(name=reference)[:2])
        if len(matches) > 1:
            raise ValueError(f"several websites are named {reference!r}; use the id, a hostname or tenant-slug/name")
        website = matches[0] if matches else None
    if website is None:
        raise ValueError(f"no website with id, hostname or name {reference!r}")
    return website
