from django.urls import re_path

from .api import WebsiteCdnView, WebsiteInvalidationsView, WebsiteInvalidationView

WEBSITE = r"^websites/(?P<website_id>[0-9a-fA-F-]{36})"

urlpatterns = [
    # One rule for every path of the API: it ends with a slash (Django redirects a GET without one).
    re_path(rf"{WEBSITE}/invalidations/$", WebsiteInvalidationsView.as_view(), name="website-invalidations"),
    re_path(
        rf"{WEBSITE}/invalidations/(?P<invalidation_id>[0-9a-fA-F-]{{36}})/$",
        WebsiteInvalidationView.as_view(),
        name="website-invalidation",
    ),
    re_path(rf"{WEBSITE}/cdn/$", WebsiteCdnView.as_view(), name="website-cdn"),
]
