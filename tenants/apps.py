from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and websites"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
