"""Django-level error views: JSON in the one shape under /api/, Django's plain pages elsewhere."""

from django.views import defaults

from .exceptions import error_response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception):
    if _is_api(request):
        return error_response("bad_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return error_response("permission_denied", "You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception)


def not_found(request, exception):
    if _is_api(request):
        return error_response("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return error_response("server_error", "An unexpected error occurred.", 500)
    return defaults.server_error(request)
