"""POST/GET /api/v1/websites/{id}/invalidations/[{invalidation id}/]: request a purge, list and read the records."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apikeys.permissions import operator_write
from tenants import selectors
from tenants.api import acting_tenant

from . import selectors as cdn_selectors
from . import services
from .models import Invalidation
from .serializers import (
    InvalidationCreateInput,
    InvalidationListQuery,
    InvalidationOutput,
    WebsiteCdnInput,
    WebsiteCdnOutput,
)


@extend_schema(tags=["CDN"])
class WebsiteInvalidationsView(GenericAPIView):
    required_scopes = {"GET": "websites:read", "HEAD": "websites:read", "POST": "cdn:invalidate"}
    operator_permissions = {"GET": "cdn.view_invalidation", "POST": "console.invalidate_cdn"}
    serializer_class = InvalidationOutput
    filter_backends = []  # `status` only, below

    def get_queryset(self):
        return Invalidation.objects.none()

    def _website(self):
        return selectors.website_get(website_id=self.kwargs["website_id"], tenant=acting_tenant(self.request))

    @extend_schema(
        summary="List a website's invalidations", description="Newest first.",
        responses=InvalidationOutput(many=True),
        parameters=[OpenApiParameter("status", enum=Invalidation.Status.values, description="Only those in this state.")],
    )  # fmt: skip
    def get(self, request, website_id):
        website = self._website()
        query = InvalidationListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        invalidations = cdn_selectors.invalidation_list(website=website, status=query.validated_data.get("status"))
        page = self.paginate_queryset(invalidations)
        return self.get_paginated_response(InvalidationOutput(page, many=True).data)

    @extend_schema(
        summary="Invalidate cached pages", request=InvalidationCreateInput,
        responses={202: InvalidationOutput},
        description="Queued and sent to the website's CDN in batches; poll the record or subscribe to "
        "`cdn.invalidation.completed` / `cdn.invalidation.failed`.",
    )  # fmt: skip
    def post(self, request, website_id):
        serializer = InvalidationCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        website = self._website()
        with operator_write(self, action="website.invalidate_cdn", target=website) as audit:
            invalidation = services.invalidation_request(
                website=website, paths=serializer.validated_data["paths"], reason=f"api by {request.user}"
            )
            audit.detail.update({"invalidation": str(invalidation.pk), "paths": invalidation.paths})
        return Response(InvalidationOutput(invalidation).data, status=status.HTTP_202_ACCEPTED)

    # Units a purge request counts in the usage plan (a read costs 1): it reaches every CDN provider, and
    # one request may purge the whole site. Decided before the body is read, so every purge costs this.
    post.gateway_cost = 10


@extend_schema(tags=["CDN"])
class WebsiteInvalidationView(GenericAPIView):
    """GET /api/v1/websites/{id}/invalidations/{invalidation id}: one record, with its provider requests."""

    required_scopes = {"GET": "websites:read", "HEAD": "websites:read"}
    operator_permissions = {"GET": "cdn.view_invalidation", "HEAD": "cdn.view_invalidation"}
    serializer_class = InvalidationOutput

    def get_queryset(self):
        return Invalidation.objects.none()

    @extend_schema(summary="Read an invalidation", responses=InvalidationOutput)
    def get(self, request, website_id, invalidation_id):
        website = selectors.website_get(website_id=website_id, tenant=acting_tenant(request))
        invalidation = get_object_or_404(cdn_selectors.invalidation_list(website=website), pk=invalidation_id)
        return Response(InvalidationOutput(invalidation).data)


@extend_schema(tags=["CDN"])
class WebsiteCdnView(GenericAPIView):
    """GET/PATCH /api/v1/websites/{id}/cdn/: the website's CDN backend, provider ids, cache overrides.

    Changing them is for operators only: a provider id names infrastructure (a distribution, a zone)
    that a tenant could otherwise point at another tenant's cache.
    """

    required_scopes = {"GET": "websites:read", "HEAD": "websites:read"}
    operator_permissions = {"GET": "tenants.view_website", "PATCH": "console.configure_cdn"}

    serializer_class = WebsiteCdnOutput

    def get_queryset(self):
        return Invalidation.objects.none()

    def _website(self):
        return selectors.website_get(website_id=self.kwargs["website_id"], tenant=acting_tenant(self.request))

    @extend_schema(summary="Read a website's CDN settings", responses=WebsiteCdnOutput)
    def get(self, request, website_id):
        return Response(WebsiteCdnOutput(self._website()).data)

    @extend_schema(summary="Change a website's CDN settings", request=WebsiteCdnInput, responses=WebsiteCdnOutput)
    def patch(self, request, website_id):
        serializer = WebsiteCdnInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        website = self._website()
        with operator_write(self, action="website.configure_cdn", target=website, detail=serializer.validated_data):
            website = services.website_cdn_update(website=website, **serializer.validated_data)
        return Response(WebsiteCdnOutput(website).data)
