"""A local HTTP server following Cloudflare's documented purge_cache contract.

POST /client/v4/zones/{zone_id}/purge_cache with `Authorization: Bearer <token>` and a JSON body
holding exactly one of `files` (URLs, or {"url", "headers"} objects), `prefixes`, `hosts`, `tags`
or `purge_everything: true`; at most `max_operations` items per request; answers the v4 envelope
{"success", "errors": [{"code", "message"}], "messages", "result": {"id"}}; a request beyond the
rate limit gets 429 with Retry-After. Cloudflare cannot run here, so this stands in for it.
"""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PURGE_KEYS = ("files", "prefixes", "hosts", "tags", "purge_everything")


class FakeCloudflare:
    def __init__(self, *, token: str, zone_id: str, max_operations: int = 30):
        self.token, self.zone_id, self.max_operations = token, zone_id, max_operations
        self.purges: list[dict] = []
        self.rejections: list[tuple[int, dict]] = []
        self.throttle_next = 0  # answer the next N requests with 429
        self.retry_after = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/client/v4"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler, status: int, body: dict, headers: dict | None = None) -> None:
        if status != 200:
            self.rejections.append((status, body))
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _error(self, handler, status: int, code: int, message: str, headers: dict | None = None) -> None:
        body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
        self._answer(handler, status, body, headers)

    def handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        expected_path = f"/client/v4/zones/{self.zone_id}/purge_cache"
        if handler.path != expected_path:
            return self._error(handler, 404, 7003, "Could not route to the zone: no such zone")
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(handler, 403, 10000, "Authentication error")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return self._error(handler, 429, 971, "Please wait and consider throttling your request speed",
                               {"Retry-After": str(self.retry_after)})  # fmt: skip
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(
                handler,
                400,
                1012,
                "Request must contain one of 'purge_everything', 'files', 'tags', 'hosts' or 'prefixes'",
            )
        present = [key for key in PURGE_KEYS if key in body]
        if len(present) != 1:
            return self._error(
                handler,
                400,
                1012,
                "Request must contain one of 'purge_everything', 'files', 'tags', 'hosts' or 'prefixes'",
            )
        key = present[0]
        if key != "purge_everything":
            items = body[key]
            if not isinstance(items, list) or not items:
                return self._error(handler, 400, 1012, f"'{key}' must be a non-empty list")
            if len(items) > self.max_operations:
                return self._error(
                    handler, 400, 1134, f"Too many items in '{key}': at most {self.max_operations} per request"
                )
            if key == "files" and not all(
                (isinstance(item, str) and item.startswith(("http://", "https://")))
                or (isinstance(item, dict) and "url" in item)
                for item in items
            ):
                return self._error(handler, 400, 1012, "files must be absolute URLs")
            if key == "prefixes" and any("://" in item for item in items):
                return self._error(handler, 400, 1012, "prefixes must not include the scheme")
        self.purges.append(body)
        self._answer(handler, 200, {"success": True, "errors": [], "messages": [], "result": {"id": uuid.uuid4().hex}})
