from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ApiKeyViewSet, UsageView

router = SimpleRouter()
router.register("keys", ApiKeyViewSet, basename="apikey")

urlpatterns = [*router.urls, path("usage/", UsageView.as_view(), name="usage")]
