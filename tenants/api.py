"""REST API for tenants, websites and deployments: validate, call one service, render."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from apikeys.permissions import OperatorsOnly, operator_write
from core.api_schema import CONFLICT
from core.exceptions import ApplicationError
from core.request_limits import JSONParser

from . import deployments, plans, selectors, services, verification
from .filters import DeploymentFilter, TenantFilter, WebsiteFilter
from .models import Deployment
from .serializers import (
    DeploymentCreateInput,
    DeploymentOutput,
    DeploymentRollbackInput,
    HostnameOutput,
    TenantCreateInput,
    TenantOutput,
    TenantSuspendInput,
    TenantUpdateInput,
    WebsiteCreateInput,
    WebsiteOutput,
    WebsiteUpdateInput,
)

# Operator-only fields of a tenant (audited as tenant.change_tier, with console.change_tier): the tier and
# the overrides of its usage plan.
LIMIT_FIELDS = ("tier", "rate_limit_override", *plans.PLAN_OVERRIDES)


def acting_tenant(request):
    """The tenant an API key acts for; None for an operator (staff) session."""
    return getattr(request, "tenant", None)


def target_tenant(request, tenant_id):
    """The tenant a create acts for: an API key's own (a `tenant` it names is ignored), or the one an
    operator names (required)."""
    tenant = acting_tenant(request)
    if tenant is not None:
        return tenant
    if tenant_id is None:
        raise ApplicationError("invalid", "The request is invalid.", fields={"tenant": ["This field is required."]})
    found = selectors.tenant_list().filter(pk=tenant_id).first()
    if found is None:
        raise ApplicationError("invalid", "The request is invalid.", fields={"tenant": ["No such tenant."]})
    return found


def _validated(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# A canonical UUID: anything else in an id's place is not a route (404), never a 400 from the lookup.
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@extend_schema_view(
    list=extend_schema(summary="List tenants"),
    retrieve=extend_schema(summary="Read a tenant"),
)
class TenantViewSet(viewsets.GenericViewSet):
    """Tenants: operators only (no scope lets an API key in)."""

    permission_classes = [OperatorsOnly]
    operator_permissions = {
        "list": "tenants.view_tenant",
        "retrieve": "tenants.view_tenant",
        "create": "tenants.add_tenant",
        "partial_update": "tenants.change_tenant",  # and console.change_tier for the tier or the limit
        "suspend": "console.suspend_tenant",
        "reactivate": "console.suspend_tenant",
    }
    lookup_value_regex = UUID_PATTERN
    serializer_class = TenantOutput
    filterset_class = TenantFilter
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at", "tier"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.tenant_list()

    def list(self, request):
        usage_plans = plans.usage_plans_by_tier()
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(TenantOutput(page, many=True, context={"usage_plans": usage_plans}).data)

    def retrieve(self, request, pk=None):
        return Response(TenantOutput(self.get_object()).data)

    @extend_schema(summary="Create a tenant", request=TenantCreateInput, responses={201: TenantOutput, 409: CONFLICT})
    def create(self, request):
        data = _validated(TenantCreateInput, request)
        with operator_write(self, action="tenant.create", detail=data) as audit:
            audit.target = tenant = services.tenant_create(**data)
        return Response(TenantOutput(tenant).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a tenant's name, tier or limit", request=TenantUpdateInput, responses={200: TenantOutput},
        description="Changing `tier` or `rate_limit_override` needs the operator permission `console.change_tier`.",
    )  # fmt: skip
    def partial_update(self, request, pk=None):
        data = _validated(TenantUpdateInput, request)
        tenant = self.get_object()
        limits = {field: data.pop(field) for field in LIMIT_FIELDS if field in data}
        with operator_write(
            self, action="tenant.change_tier" if limits else "tenant.update", target=tenant,
            detail={**data, **limits}, also=("console.change_tier",) if limits else (),
        ):  # fmt: skip
            if "name" in data or "tier" in limits:
                tenant = services.tenant_update(tenant=tenant, name=data.get("name"), tier=limits.get("tier"))
            if "rate_limit_override" in limits:
                tenant = services.tenant_limit_override(
                    tenant=tenant, requests_per_minute=limits["rate_limit_override"]
                )
            overrides = {name: limits[field] for field, name in plans.PLAN_OVERRIDES.items() if field in limits}
            if overrides:
                tenant = plans.tenant_plan_override(tenant=tenant, **overrides)
        return Response(TenantOutput(tenant).data)

    @extend_schema(
        summary="Suspend a tenant", request=TenantSuspendInput, responses={200: TenantOutput, 409: CONFLICT},
        description="Its API keys are refused (403 `tenant_suspended`) from the next request.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        data = _validated(TenantSuspendInput, request)
        tenant = self.get_object()
        with operator_write(self, action="tenant.suspend", target=tenant, reason=data["reason"]):
            tenant = services.tenant_suspend(tenant=tenant, **data)
        return Response(TenantOutput(tenant).data)

    @extend_schema(summary="Reactivate a tenant", request=None, responses={200: TenantOutput, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        tenant = self.get_object()
        with operator_write(self, action="tenant.reactivate", target=tenant):
            tenant = services.tenant_reactivate(tenant=tenant)
        return Response(TenantOutput(tenant).data)


@extend_schema(tags=["Websites"])
@extend_schema_view(
    list=extend_schema(summary="List websites"),
    retrieve=extend_schema(summary="Read a website"),
    destroy=extend_schema(summary="Delete a website", description="Its deployments and files go with it."),
)
class WebsiteViewSet(viewsets.GenericViewSet):
    required_scopes = {
        "list": "websites:read",
        "retrieve": "websites:read",
        "deployments": "websites:read",
        "create": "websites:write",
        "partial_update": "websites:write",
        "destroy": "websites:write",
        "create_deployment": "deployments:write",
        "rollback": "deployments:write",
        "verify_hostname": "websites:write",
    }
    operator_permissions = {
        "list": "tenants.view_website",
        "retrieve": "tenants.view_website",
        "deployments": "tenants.view_deployment",
        "create": "tenants.add_website",
        "partial_update": "tenants.change_website",
        "destroy": "tenants.delete_website",
        "create_deployment": "tenants.add_deployment",
        "rollback": "tenants.change_website",
        "verify_hostname": "tenants.view_hostname",  # looks DNS up: what it finds is the tenant's doing
    }
    lookup_value_regex = UUID_PATTERN
    serializer_class = WebsiteOutput
    filterset_class = WebsiteFilter
    search_fields = ["name", "hostnames__hostname"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.website_list(tenant=acting_tenant(self.request))

    def filter_queryset(self, queryset):
        # The list's filters are the list's: DRF's get_object() would also apply them to a detail route,
        # so `/websites/{id}/deployments/?status=pending` was refused as an invalid *website* status.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()).distinct())
        return self.get_paginated_response(WebsiteOutput(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(WebsiteOutput(self.get_object()).data)

    @extend_schema(
        summary="Create a website", request=WebsiteCreateInput, responses={201: WebsiteOutput, 409: CONFLICT},
        description="Custom hostnames start `pending`: each is served once its DNS TXT record is found "
        "(see `hostname_details[].record`). The preview host serves the website at once.",
    )  # fmt: skip
    def create(self, request):
        data = _validated(WebsiteCreateInput, request)
        tenant = target_tenant(request, data.pop("tenant", None))
        with operator_write(self, action="website.create", detail={**data, "tenant": str(tenant.pk)}) as audit:
            audit.target = website = services.website_create(tenant=tenant, **data)
        return Response(WebsiteOutput(selectors.website_get(website_id=website.pk)).data, status=201)

    @extend_schema(
        summary="Change a website", request=WebsiteUpdateInput, responses={200: WebsiteOutput, 409: CONFLICT},
        description="`hostnames` replaces the whole list. CDN settings are changed on `/cdn/` (operators).",
    )  # fmt: skip
    def partial_update(self, request, pk=None):
        data = _validated(WebsiteUpdateInput, request)
        website = self.get_object()
        with operator_write(self, action="website.update", target=website, detail=data):
            website = services.website_update(website=website, **data)
        return Response(WebsiteOutput(selectors.website_get(website_id=website.pk)).data)

    def destroy(self, request, pk=None):
        website = self.get_object()
        with operator_write(self, action="website.delete", target=website, detail={"tenant": str(website.tenant_id)}):
            services.website_delete(website=website)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="List a website's deployments", tags=["Deployments"], responses=DeploymentOutput(many=True),
        description="Newest first.",
        parameters=[
            OpenApiParameter("status", enum=Deployment.Status.values, description="Only deployments in this state."),
            OpenApiParameter("trigger", enum=Deployment.Trigger.values, description="Only those started this way."),
        ],
    )  # fmt: skip
    # Only the deployment filters above: the website list's filters, search and ordering do not apply here.
    @action(
        detail=True, methods=["get"], url_path="deployments", parser_classes=[MultiPartParser, JSONParser],
        filter_backends=[],
    )  # fmt: skip
    def deployments(self, request, pk=None):
        website = self.get_object()
        filterset = DeploymentFilter(request.query_params, queryset=selectors.deployment_list(website=website))
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(DeploymentOutput(page, many=True).data)

    @extend_schema(
        summary="Deploy a site bundle", tags=["Deployments"],
        request={"multipart/form-data": DeploymentCreateInput},
        responses={201: DeploymentOutput, 409: CONFLICT},
        description="Upload a site bundle (tar.gz or zip, form field `bundle`, at most `DEPLOY_BUNDLE_MAX_BYTES`): "
        "it is checked now and deployed by a worker. Poll `GET /api/v1/deployments/{id}/` or subscribe to "
        "`deployment.succeeded` / `deployment.failed`. Example: `curl -F bundle=@site.tar.gz -F description=v2 …`.",
    )  # fmt: skip
    @deployments.mapping.post
    def create_deployment(self, request, pk=None):
        website = self.get_object()
        data = _validated(DeploymentCreateInput, request)
        # Django spooled a large upload to a temporary file; it is streamed on to object storage.
        bundle = data["bundle"]
        bundle.seek(0)
        with operator_write(self, action="deployment.create", target=website, detail={"size": bundle.size}) as audit:
            deployment = deployments.deployment_create(
                website=website, trigger=Deployment.Trigger.API, description=data["description"], bundle=bundle.file
            )
            audit.detail["deployment"] = str(deployment.pk)
        deployment.refresh_from_db()
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)

    # The upload's own limit (request_limits: a larger request gets a 413 before it is read); the slack
    # is for the multipart framing and the description.
    create_deployment.max_body_bytes = lambda: settings.DEPLOY_BUNDLE_MAX_BYTES + 64 * 1024
    # Units this call counts in the usage plan's windows and quota (a read costs 1): an upload stores and
    # validates a bundle, then a worker deploys it and purges the CDN.
    create_deployment.gateway_cost = 10

    @extend_schema(
        summary="Roll back to an earlier deployment", tags=["Deployments"], request=DeploymentRollbackInput,
        responses={201: DeploymentOutput, 409: CONFLICT},
        description="A new deployment that serves the files of `deployment` (default: the last successful one "
        "before the active one) again; `source_deployment` names it.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        website = self.get_object()
        data = _validated(DeploymentRollbackInput, request)
        target = None
        if data.get("deployment"):
            target = website.deployments.filter(pk=data["deployment"]).first()
            if target is None:
                raise ApplicationError(
                    "invalid", "The request is invalid.", fields={"deployment": ["No such deployment of this website."]}
                )
        with operator_write(self, action="website.rollback", target=website) as audit:
            deployment = deployments.deployment_rollback(website=website, to=target)
            audit.detail.update({"deployment": deployment.number, "serving": target.number if target else None})
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Check a custom hostname's DNS record now", request=None, responses=HostnameOutput,
        description="Look the hostname's `_platform-challenge` TXT record up now. Found: the hostname is "
        "verified and served. Not found: it stays pending (a failed one is checked again with backoff).",
    )  # fmt: skip
    @action(detail=True, methods=["post"], url_path=r"hostnames/(?P<hostname>[^/]+)/verify")
    def verify_hostname(self, request, pk=None, hostname=None):
        found = selectors.website_hostname_get(website=self.get_object(), hostname=hostname)
        with operator_write(self, action="hostname.verify", target=found):
            checked = verification.hostname_verify(hostname=found, requested=True)
        if checked is None:  # removed while it was being checked
            raise ApplicationError("not_found", "Not found.", status_code=404)
        return Response(HostnameOutput(checked).data)


@extend_schema(tags=["Deployments"])
@extend_schema_view(retrieve=extend_schema(summary="Read a deployment"))
class DeploymentViewSet(viewsets.GenericViewSet):
    required_scopes = {"retrieve": "websites:read"}
    operator_permissions = {"retrieve": "tenants.view_deployment"}
    lookup_value_regex = UUID_PATTERN
    serializer_class = DeploymentOutput
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return Deployment.objects.none()

    def retrieve(self, request, pk=None):
        deployment = selectors.deployment_get(deployment_id=pk, tenant=acting_tenant(request))
        return Response(DeploymentOutput(deployment).data)
