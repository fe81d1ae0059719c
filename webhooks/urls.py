from rest_framework.routers import SimpleRouter

from .api import DeliveryViewSet, EndpointViewSet, EventTypeViewSet, SigningKeyViewSet

router = SimpleRouter()
router.register("webhooks/endpoints", EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", DeliveryViewSet, basename="webhook-delivery")
router.register("webhooks/event-types", EventTypeViewSet, basename="webhook-event-type")
router.register("webhooks/keys", SigningKeyViewSet, basename="webhook-signing-key")

urlpatterns = router.urls
