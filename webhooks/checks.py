"""System checks of the webhooks' configuration (`manage.py check`, at start)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register()
def check_dns_resolvers(app_configs, **kwargs) -> list:
    from .ssrf import configured_nameservers

    try:
        configured_nameservers()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="webhooks.E001")]
    return []
