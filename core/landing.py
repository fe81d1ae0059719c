"""The platform host's front page: where to go next (console, API docs, status), instead of a 404."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def landing_page(request):
    return render(
        request,
        "landing.html",
        {"embedded": not settings.REAL_MODE, "preview_domain": settings.SITES_PREVIEW_DOMAIN},
    )
