"""Request instrumentation: django-prometheus' request metrics, and api_request_duration_seconds for
every /api/ request.

ApiMetricsMiddleware sits outside the API gateway (right after django-prometheus' Before middleware) so
it also times the 401/429 answers the gateway gives before any view runs. The route label is the URL
pattern's name (bounded by the code), never the raw path; the method label is one of the methods we
serve or "other" everywhere (django-prometheus labels its latency histogram with the raw method).
"""

import time

from django.urls import Resolver404, resolve
from django_prometheus import middleware as django_prometheus

from .metrics import http_method_label, record_api_request


class _BoundedMethodLabels:
    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels:
            labels["method"] = http_method_label(request.method)
        return super().label_metric(metric, request, response, **labels)


class PrometheusAfterMiddleware(_BoundedMethodLabels, django_prometheus.PrometheusAfterMiddleware):
    pass


API_PREFIX = "/api/"


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:  # answered before URL resolution (the gateway's 401/429)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.view_name or "unnamed"


class ApiMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        if getattr(request, "website_host", False):  # a tenant's site with an /api/ path of its own
            return response
        record_api_request(
            method=request.method,
            route=_route(request),
            status_code=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
