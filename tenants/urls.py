from rest_framework.routers import SimpleRouter

from .api import DeploymentViewSet, TenantViewSet, WebsiteViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("websites", WebsiteViewSet, basename="website")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = router.urls
