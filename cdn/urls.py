from django.urls import re_path

from .api import WebsiteInvalidationsView

urlpatterns = [
    # The spelling has no trailing slash; the router's style has one. Both work.
    re_path(
        r"^websites/(?P<website_id>[0-9a-fA-F-]{36})/invalidations/?$",
        WebsiteInvalidationsView.as_view(),
        name="website-invalidations",
    ),  # fmt: skip
]
