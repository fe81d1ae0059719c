from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from core import api_docs, errors, landing
from dbrouting import views as replicas_admin
from observability import endpoint as metrics_endpoint
from observability import health

api_v1 = [
    path("", include("tenants.urls")),
    path("", include("apikeys.urls")),
    path("", include("cdn.urls")),
    path("", include("webhooks.urls")),
    path("", include("tenants.usage_urls")),
]

urlpatterns = [
    path("", landing.landing_page, name="landing"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/replicas/", replicas_admin.replica_status_view, name="admin-replicas"),
    path("admin/console/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("sites/", include("tenants.origin")),
    path("api/schema/", api_docs.SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", url_self="/api/docs/"), name="swagger-ui"),
    path("metrics", metrics_endpoint.metrics, name="metrics"),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.not_found
handler500 = errors.server_error
