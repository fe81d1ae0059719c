"""Requests the API refuses before its views, with a clear 4xx in the one error shape, never a 5xx.

* Too large: `RequestBodyLimitMiddleware` answers 413 from the Content-Length, before a byte of the body
  is read. The limit is API_MAX_BODY_BYTES, or a view's own `max_body_bytes` (the bundle upload).
  A body sent without a length (chunked) is counted as it is read (DRF reads no such body as JSON).
* Nested deeper than API_MAX_JSON_DEPTH, or holding a NUL character (which PostgreSQL cannot store in
  text or jsonb): `JSONParser` answers 400 naming the top-level field.
* Read two ways: a JSON key given twice in one object (400 naming it), a JSON body in another encoding than
  UTF-8 (415; RFC 8259 §8.1), a query parameter given twice (400 naming it). A filter in front of the API
  (a WAF, a proxy) may read the first value, or only UTF-8, where the API would have read the last.
"""

import codecs
import json

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from .exceptions import ApplicationError, error_response

API_PREFIX = "/api/"
# Methods whose body the API may read. A GET, HEAD or OPTIONS body is never read (it has no meaning here),
# so it is not refused either: the published description lists 413 for these methods only.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def body_too_large(limit: int):
    return error_response(
        "request_too_large",
        f"The request body is larger than {limit} bytes.",
        413,
        fields={"body": [f"At most {limit} bytes."]},
    )


class RequestBodyLimitMiddleware:
    """413 for an API request whose declared body exceeds its view's limit (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path_info.startswith(API_PREFIX):
            return None
        refused = repeated_query_parameters(request)
        if refused is not None or request.method not in BODY_METHODS:
            return refused
        limit = _view_limit(view_func, request.method)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("bad_request", "The Content-Length header is not a number.", 400)
        if length > limit:
            return body_too_large(limit)
        return None


def repeated_query_parameters(request):
    """400 naming every query parameter of an API request given more than once (none takes a list)."""
    if not request.path_info.startswith(settings.API_GATEWAY_PATH_PREFIX):
        return None
    repeated = sorted(name for name, values in request.GET.lists() if len(values) > 1)
    if not repeated:
        return None
    return error_response(
        "invalid", "The request is invalid.", 400,
        fields={name: ["Given more than once; give it once."] for name in repeated},
    )  # fmt: skip


def _view_limit(view_func, method: str) -> int:
    view_class = getattr(view_func, "cls", None)
    actions = getattr(view_func, "actions", None) or {}
    handler = getattr(view_class, actions.get(method.lower(), ""), None) if view_class else None
    for owner in (handler, view_class):
        limit = getattr(owner, "max_body_bytes", None)
        if limit is not None:
            return int(limit() if callable(limit) else limit)
    return settings.API_MAX_BODY_BYTES


def _check(value, *, depth: int, field: str | None, limit: int) -> None:
    """Walk a parsed document without recursion (a hostile one must not exhaust the stack)."""
    stack = [(value, depth, field)]
    while stack:
        item, level, top = stack.pop()
        if level > limit:
            raise ValidationError({top or "body": [f"JSON is nested deeper than {limit} levels."]})
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError({top or "body": ["Null characters are not allowed."]})
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise ValidationError({top or "body": ["Null characters are not allowed."]})
                stack.append((child, level + 1, top if top is not None else key))
        elif isinstance(item, list):
            stack.extend((child, level + 1, top) for child in item)


class _KeyGivenTwice(Exception):
    def __init__(self, key: str):
        self.key = key


def _object_without_repeats(pairs: list) -> dict:
    found = {}
    for key, value in pairs:
        if key in found:
            raise _KeyGivenTwice(key)
        found[key] = value
    return found


def _strict_constant(name: str):
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, stricter: UTF-8 only, no key twice in an object, a depth limit and no NUL
    character (a 4xx naming what it refuses, never a 500 or a 503)."""

    def parse(self, stream, media_type=None, parser_context=None):
        _, params = parse_header_parameters(media_type or "")
        charset = params.get("charset", "utf-8").strip().lower()
        if charset not in ("utf-8", "utf8"):
            message = f"JSON bodies are UTF-8 (RFC 8259); this one says charset={charset}."
            raise ApplicationError("unsupported_media_type", message, fields={"body": [message]}, status_code=415)
        try:
            data = json.load(
                codecs.getreader("utf-8")(stream),
                object_pairs_hook=_object_without_repeats, parse_constant=_strict_constant,
            )  # fmt: skip
        except _KeyGivenTwice as exc:
            raise ValidationError({exc.key: ["Given twice in one JSON object; give it once."]}) from exc
        except RecursionError as exc:
            raise ParseError(f"JSON is nested deeper than {settings.API_MAX_JSON_DEPTH} levels.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        _check(data, depth=0, field=None, limit=settings.API_MAX_JSON_DEPTH)
        return data
