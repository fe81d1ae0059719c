from django.urls import re_path

from tenants.api import UUID_PATTERN

from .api import WebsiteCdnView, WebsiteInvalidationsView, WebsiteInvalidationView

WEBSITE = rf"^websites/(?P<website_id>{UUID_PATTERN})"

urlpatterns = [
    # One rule for every path of the API: it ends with a slash (Django redirects a GET without one).
    re_path(rf"{WEBSITE}/invalidations/$", WebsiteInvalidationsView.as_view(), name="website-invalidations"),
    re_path(
        rf"{WEBSITE}/invalidations/(?P<invalidation_id>{UUID_PATTERN})/$",
        WebsiteInvalidationView.as_view(),
        name="website-invalidation",
    ),
    re_path(rf"{WEBSITE}/cdn/$", WebsiteCdnView.as_view(), name="website-cdn"),
]
