"""Reads of CDN invalidations, for the API, the console and the CLI."""

from django.db.models import QuerySet

from .models import Invalidation


def invalidation_list(*, website, status: str | None = None) -> QuerySet[Invalidation]:
    """A website's invalidations, newest first, with their provider requests."""
    invalidations = website.invalidations.prefetch_related("requests").order_by("-requested_at")
    return invalidations.filter(status=status) if status else invalidations


def invalidations_recent(*, limit: int = 8) -> QuerySet[Invalidation]:
    """The latest invalidations of every website (the operator dashboard)."""
    return Invalidation.objects.select_related("website").order_by("-requested_at")[:limit]
