"""Which rows a tenant owns: every model with a foreign-key path to Tenant, found from _meta.

New apps (API keys, webhooks, CDN) are included without a change here: a model is tenant data as soon
as it has a chain of ForeignKeys leading to Tenant. settings.BACKUP_TENANT_EXPORT_EXCLUDE opts one out.
"""

import hashlib
from collections import deque
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import models

from tenants.models import Tenant


@dataclass(frozen=True)
class TenantOwnedModel:
    model: type[models.Model]
    # ORM path from the model to the tenant's primary key ("pk" for Tenant itself).
    tenant_path: str

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def attnames(self) -> list[str]:
        return [field.attname for field in self.model._meta.concrete_fields]


def _path_to_tenant(model: type[models.Model]) -> str | None:
    """Shortest chain of required ForeignKeys from model to Tenant, as an ORM path.

    Only required (non-null) keys mean ownership; a nullable one such as website.active_deployment is a
    reference between rows the tenant already owns through another path.
    """
    if model is Tenant:
        return "pk"
    queue = deque([(model, [])])
    seen = {model}
    while queue:
        current, path = queue.popleft()
        for field in current._meta.concrete_fields:
            if not isinstance(field, models.ForeignKey) or field.null:
                continue
            target = field.related_model
            if target is Tenant:
                return "__".join([*path, field.name])
            if target not in seen:
                seen.add(target)
                queue.append((target, [*path, field.name]))
    return None


def tenant_owned_models() -> list[TenantOwnedModel]:
    """Tenant first, then the others in a stable order."""
    excluded = {label.lower() for label in settings.BACKUP_TENANT_EXPORT_EXCLUDE}
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.label_lower in excluded:
            continue
        path = _path_to_tenant(model)
        if path:
            found.append(TenantOwnedModel(model=model, tenant_path=path))
    return sorted(found, key=lambda m: (m.model is not Tenant, m.tenant_path.count("__"), m.label))


def schema_version(owned: list[TenantOwnedModel] | None = None) -> str:
    """A fingerprint of the exported tables' columns: an export restores only into the same shape."""
    digest = hashlib.sha256()
    for item in owned or tenant_owned_models():
        for field in item.model._meta.concrete_fields:
            digest.update(f"{item.label}.{field.attname}:{field.get_internal_type()};".encode())
    return digest.hexdigest()[:16]
