"""One error type, one handler, one JSON shape: {"error": {"code", "message", "fields"}}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A failure the client can act on; rendered as the one error shape."""

    def __init__(self, code: str, message: str, *, fields: dict | None = None, status_code: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.status_code = status_code


class ConflictError(ApplicationError):
    def __init__(self, message: str, *, fields: dict | None = None, code: str = "conflict"):
        super().__init__(code, message, fields=fields, status_code=409)


class ServiceUnavailable(ApplicationError):
    def __init__(self, code: str, message: str):
        super().__init__(code, message, status_code=503)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(code: str, message: str, status_code: int, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status_code)


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_request",
}


def _flatten(detail) -> dict:
    """DRF's nested error details become {"field": ["message", ...]}."""
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {api_settings.NON_FIELD_ERRORS_KEY: _messages(detail)}


def _messages(value) -> list:
    if isinstance(value, list):
        flat = []
        for item in value:
            flat.extend(_messages(item) if isinstance(item, list | dict) else [str(item)])
        return flat
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, messages in value.items() for message in _messages(messages)]
    return [str(value)]


def primary_reachable() -> bool:
    """False when the primary PostgreSQL is known to be down (polled state, or a quick probe)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return True
    from dbrouting.monitor import get_monitor

    return get_monitor().primary_reachable()


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error of the API in the one shape."""
    headers = {}
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "The request is invalid.", fields), status=400)
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", "The request body is too large."), status=413)
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, a malformed multipart body
        return Response(error_body("malformed_request", str(exc) or "The request is malformed."), status=400)
    elif isinstance(exc, DataError):
        # A value the database cannot store (a NUL character, an out-of-range number) that slipped past
        # validation: the client's input, not an outage.
        logger.info("data error turned into 400: %s", exc.__class__.__name__)
        return Response(error_body("invalid", "The request holds a value that cannot be stored."), status=400)
    elif isinstance(exc, IntegrityError):
        # The database refused a duplicate or an invalid reference that slipped past validation.
        logger.info("integrity error turned into 409: %s", exc.__class__.__name__)
        return Response(error_body("conflict", "The request conflicts with existing data."), status=409)
    elif isinstance(exc, OperationalError | DatabaseError):
        if not primary_reachable():
            # Reads keep working from replicas; only what needs the primary fails, and says so.
            logger.warning("primary database unavailable: %s", exc.__class__.__name__)
            return Response(
                error_body("primary_unavailable", "The primary database is unavailable; try again shortly."),
                status=503,
            )
        logger.exception("database unavailable")
        return Response(
            error_body("database_unavailable", "The database is unavailable; try again shortly."), status=503
        )

    if isinstance(exc, exceptions.ValidationError):
        return Response(error_body("invalid", "The request is invalid.", _flatten(exc.detail)), status=400)
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        # Nothing of the body could be read: the body is the field at fault.
        message = str(exc.detail)
        if isinstance(exc, exceptions.UnsupportedMediaType):
            view = context.get("view")
            accepted = sorted({parser.media_type for parser in view.get_parsers()}) if view else []
            message = f"{message} Send {' or '.join(accepted) or 'no body'}."
        code = "unsupported_media_type" if isinstance(exc, exceptions.UnsupportedMediaType) else "malformed_request"
        return Response(error_body(code, message, {"body": [message]}), status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        code = _DRF_CODES.get(type(exc)) or next(
            (code for cls, code in _DRF_CODES.items() if isinstance(exc, cls)), exc.default_code
        )
        message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        return Response(error_body(code, str(message)), status=exc.status_code, headers=headers)

    logger.exception("unhandled API error", exc_info=exc)
    return Response(
        error_body("server_error", "An unexpected error occurred."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )
