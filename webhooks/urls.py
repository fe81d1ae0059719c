from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import DeliveryViewSet, EndpointViewSet, EventTypeViewSet, SigningKeyListView

router = SimpleRouter()
router.register("webhooks/endpoints", EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", DeliveryViewSet, basename="webhook-delivery")
router.register("webhooks/event-types", EventTypeViewSet, basename="webhook-event-type")

urlpatterns = [
    *router.urls,
    path("webhooks/keys/", SigningKeyListView.as_view(), name="webhook-signing-key-list"),
]
