"""What every operation of the published API says: its tag, the scope it needs, and the one error shape
on each error status it can return. Summaries and examples live with the views and serializers.

DocumentedSchema is REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS (a module of its own: drf_spectacular.views
imports the schema class while it is itself being imported).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers

from core.inputs import PLAIN_TEXT_PATTERN
from core.request_limits import BODY_METHODS

OPERATORS_TAG = "Operators"  # described in SPECTACULAR_SETTINGS["TAGS"]


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable and machine-readable: `invalid`, `not_found`, `rate_limited`, …")
    message = serializers.CharField(help_text="For people; may change.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Every invalid or unknown field of the request at once, each with its messages.",
    )


@extend_schema_serializer(component_name="Error")
class ErrorOutput(serializers.Serializer):
    """The one shape of every error of the API, whatever its status."""

    error = ErrorDetailOutput()


def _error(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


# Status -> (why it happens, an example body). Which of them an operation lists is decided in
# DocumentedSchema.error_statuses; a view adds an operation's own (409) with `extend_schema(responses=...)`.
ERRORS = {
    400: (
        "Invalid input: every invalid or unknown field is named in `fields`.",
        _error(
            "invalid",
            "The request is invalid.",
            {
                "name": ["This field is required."],
                "colour": ["Unknown field: this endpoint does not accept it."],
            },
        ),  # fmt: skip
    ),
    401: (
        "No API key, or one that is not valid, revoked or expired.",
        _error("invalid_api_key", "The API key is not valid."),
    ),
    403: (
        "The key lacks the operation's scope, the tenant is suspended, or the endpoint is for operators.",
        _error("insufficient_scope", "This API key lacks the websites:write scope.", {"scope": ["websites:write"]}),
    ),
    404: (
        "No such object for this tenant (another tenant's objects are not found either).",
        _error("not_found", "Not found."),
    ),
    409: (
        "The object's state or another object conflicts with the request.",
        _error("invalid_state", "The website is disabled."),
    ),
    413: ("The request body is larger than the limit.", _error("request_too_large", "The request body is too large.")),
    415: (
        "The body is not of a media type the operation reads (JSON bodies are UTF-8).",
        _error(
            "unsupported_media_type",
            'Unsupported media type "text/plain" in request. Send application/json.',
            {"body": ['Unsupported media type "text/plain" in request. Send application/json.']},
        ),
    ),  # fmt: skip
    429: (
        "Rate limit exceeded (`Retry-After` says when to try again).",
        _error("rate_limited", "Rate limit of 100 requests a minute exceeded."),
    ),
    503: (
        "A service the operation needs is unavailable; try again shortly.",
        _error("database_unavailable", "The database is unavailable; try again shortly."),
    ),
}
CONFLICT = OpenApiResponse(ErrorOutput, description=ERRORS[409][0])


class DocumentedSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus what a client needs on every operation: a tag per resource
    (operator-only operations under OPERATORS_TAG), the scope an API key needs (in the description and
    as `x-required-scope`), and the shared error shape on every error status the operation can return."""

    def required_scope(self) -> str | None:
        """The scope a key needs; None when no key may call the operation (operators only)."""
        request = self.view.request
        for permission in self.view.get_permissions():
            if hasattr(permission, "required_scope"):
                return permission.required_scope(request, self.view)
        return None

    def operator_only(self) -> bool:
        return self.path.startswith("/api/v1/") and self.required_scope() is None

    def error_statuses(self, operation: dict) -> list[int]:
        # 400 everywhere: besides invalid fields, a query parameter given twice is refused on every path
        # (core/request_limits.py), whether the operation reads it or not.
        statuses = [400, 401, 403, 429, 503]
        parameters = operation.get("parameters", [])
        if "requestBody" in operation:
            statuses.append(415)
        # A path names an object; a page number past the last page is a 404 too.
        if any(parameter["in"] == "path" or parameter["name"] == "page" for parameter in parameters):
            statuses.append(404)
        # The body limit applies to every method that may carry a body, whether the operation reads one
        # or not (core/request_limits.py answers from the Content-Length, before the view).
        if self.method.upper() in BODY_METHODS:
            statuses.append(413)
        return sorted(statuses)

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not path.startswith("/api/v1/"):
            return operation
        # Here rather than in get_tags/get_description, which a view's extend_schema replaces.
        scope = self.required_scope()
        operation["x-required-scope"] = scope
        access = f"**Scope:** `{scope}`." if scope else "**Operators only** (a staff session; API keys are refused)."
        operation["description"] = f"{operation.get('description', '')}\n\n{access}".strip()
        if scope is None:  # the resource's tag gives way: operators' operations are listed together
            operation["tags"] = [OPERATORS_TAG]
        error = self.resolve_serializer(ErrorOutput, "response").ref
        responses = operation.setdefault("responses", {})
        for status in self.error_statuses(operation):
            if str(status) in responses:
                continue
            description, example = ERRORS[status]
            responses[str(status)] = {
                "description": description,
                "content": {"application/json": {"schema": error, "examples": {"error": {"value": example}}}},
            }
        for status, response in responses.items():  # a view's own error statuses (409) get the example too
            if status in ("409",) and "content" in response:
                response["content"]["application/json"].setdefault("examples", {"error": {"value": ERRORS[409][1]}})
        operation["responses"] = dict(sorted(responses.items()))
        return operation


def _plain_text(node) -> None:
    """Every free-text string of a request schema, however nested, says what core.inputs refuses in text
    (control characters, NUL among them, and bidirectional controls)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            free_text = item.get("type") == "string" and not ({"pattern", "format", "enum"} & item.keys())
            if free_text:
                item["pattern"] = PLAIN_TEXT_PATTERN
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def closed_request_bodies(result, generator, request, public):
    """Postprocessing hook: request bodies refuse unknown fields and text that hides what it holds
    (core/inputs.py; NUL characters too, core/request_limits.py), so their schemas say so; a client generator or fuzzer then never sends what
    the API would refuse, and a fuzzer's negative data expects the refusal."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
            _plain_text(component)
    return result
