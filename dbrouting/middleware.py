"""Per-request routing context: read-your-writes for the request's client, and primary outages as 503."""

import hashlib
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse

from core.exceptions import error_response, primary_reachable

from . import routing

logger = logging.getLogger(__name__)

PRIMARY_UNAVAILABLE_MESSAGE = "The primary database is unavailable, so changes cannot be saved; reads still work."


def primary_unavailable_response(request):
    if request.path.startswith("/api/"):
        return error_response("primary_unavailable", PRIMARY_UNAVAILABLE_MESSAGE, 503)
    return HttpResponse(PRIMARY_UNAVAILABLE_MESSAGE, status=503, content_type="text/plain")


class ReadYourWritesMiddleware:
    """Opens a routing context per request; after a request that wrote, records the primary's WAL
    position for every identity of its client so the client's next reads see the write."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = routing.begin(request=request)
        try:
            response = self.get_response(request)
            state = routing.current_state()
            if state.wrote:
                identities = state.identities() + self._new_session_ids(response)
                try:
                    routing.record_client_write(identities)
                except DatabaseError:
                    # The write committed but the primary went away before we read its position; the
                    # client's next reads may be served stale only if a replica is also behind.
                    logger.warning("could not read the primary's WAL position after a write")
            return response
        finally:
            routing.end(token)

    def process_exception(self, request, exception):
        # DRF views are handled by the API exception handler; this covers every other view.
        if isinstance(exception, DatabaseError) and not primary_reachable():
            logger.warning("primary database unavailable: %s %s", request.method, request.path)
            return primary_unavailable_response(request)
        return None

    @staticmethod
    def _new_session_ids(response) -> tuple[str, ...]:
        # A login creates the session in this response: its later requests present that cookie.
        morsel = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if morsel is None or not morsel.value:
            return ()
        return ("session:" + hashlib.sha256(morsel.value.encode()).hexdigest()[:32],)
