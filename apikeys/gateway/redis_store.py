"""The gateway store on Redis: one script call per request, on this thread's own connection."""

import functools
import json
import os
import threading
from collections.abc import Callable
from importlib import resources

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from .base import (
    LAST_USED,
    LIMIT,
    MONTH_USED,
    REC,
    RECORD_TTL_SECONDS,
    SCRIPT_CONSTANTS,
    TENANT,
    TENANT_BURST,
    TENANT_LIMIT,
    USAGE,
    USAGE_MINUTES,
    Decision,
    GatewayStore,
    current_month,
)


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


def _pack(*parts) -> bytes:
    """One Redis command in RESP (arguments: bytes or str)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class RedisGatewayStore(GatewayStore):
    """The store shared by every process: each request is one EVALSHA of `lua/gateway.lua`."""

    def __init__(self, client):
        self.client = client
        self._gateway = client.register_script(_lua("gateway.lua"))
        self._fill = client.register_script(_lua("fill.lua"))
        self._put = client.register_script(_lua("put.lua"))
        self._forget_last_used = client.register_script(_lua("forget_last_used.lua"))
        self._gateway_sha = self._gateway.sha.encode()
        self._constants = [str(value) for value in SCRIPT_CONSTANTS]
        self._local = threading.local()

    def _script_input(self, lookup_id: str, secret_hash: str, outcomes: list, cost: int) -> tuple[list, list]:
        keys = [REC + secret_hash, LIMIT + lookup_id, LAST_USED, USAGE_MINUTES]
        month = current_month()
        outcomes_json = json.dumps(outcomes) if outcomes else ""
        return keys, [secret_hash, outcomes_json, str(cost), month.id, str(month.end), *self._constants]

    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1) -> Decision:
        keys, args = self._script_input(lookup_id, secret_hash, outcomes, cost)
        return Decision.from_reply(self._gateway(keys=keys, args=args))

    def send_evaluate(
        self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1
    ) -> Callable[[], Decision]:
        """Send the script call now; the returned function reads its reply (call it exactly once).

        Sent on this thread's own connection (no pool checkout, no command packer on the hot path), so
        nothing else reads the reply in between. Errors fall back to the pooled client's usual path.
        """
        keys, args = self._script_input(lookup_id, secret_hash, outcomes, cost)
        # The pooled client's usual path: it reconnects, loads the script and retries under its own policy.
        pooled = functools.partial(
            self.evaluate, lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes, cost=cost
        )
        connection = self._own_connection()
        try:
            connection.send_packed_command([_pack(b"EVALSHA", self._gateway_sha, b"4", *keys, *args)])
        except BaseException:
            connection.disconnect()
            return pooled  # not sent (e.g. Redis closed an idle connection)

        def receive() -> Decision:
            try:
                reply = connection.read_response()
            except NoScriptError:  # Redis restarted or flushed its scripts; nothing ran
                return pooled()
            except RedisConnectionError:  # typically Redis closed this idle connection (a restart)
                connection.disconnect()
                return pooled()
            except BaseException:
                connection.disconnect()  # the reply may still be on its way: never reuse this stream
                raise
            return Decision.from_reply(reply)

        return receive

    def _own_connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a forked worker: never share a socket
            pool = self.client.connection_pool
            local.connection, local.pid = pool.connection_class(**pool.connection_kwargs), os.getpid()
        return local.connection

    def flush_outcomes(self, outcomes: list) -> None:
        keys, args = self._script_input("", "", outcomes, 0)
        self._gateway(keys=keys, args=args)

    def _hash_args(self, ttl: int, fields: dict) -> list:
        return [ttl, *[item for pair in fields.items() for item in pair]]

    def fill_record(self, lookup_id: str, fields: dict) -> None:
        self._fill(keys=[REC + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_record(self, lookup_id: str, fields: dict) -> None:
        self._put(keys=[REC + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def fill_tenant(self, tenant_id: str, fields: dict) -> None:
        self._fill(keys=[TENANT + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_tenant(self, tenant_id: str, fields: dict) -> None:
        self._put(keys=[TENANT + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def usage_minutes(self) -> list[int]:
        return [int(float(member)) for member in self.client.zrange(USAGE_MINUTES, 0, -1)]

    def usage_read(self, minute: int) -> dict[str, dict[str, int]]:
        usage: dict[str, dict[str, int]] = {}
        for field, value in self.client.hgetall(f"{USAGE}{minute}").items():
            key_id, metric = field.decode().rsplit(":", 1)
            usage.setdefault(key_id, {})[metric] = int(value)
        return usage

    def usage_forget(self, minutes: list[int]) -> None:
        if minutes:
            self.client.zrem(USAGE_MINUTES, *minutes)

    def last_used_read(self) -> dict[str, int]:
        return {field.decode(): int(value) for field, value in self.client.hgetall(LAST_USED).items()}

    def last_used_forget(self, stamps: dict[str, int]) -> None:
        if stamps:
            self._forget_last_used(keys=[LAST_USED], args=[item for pair in stamps.items() for item in pair])

    def month_units(self, tenant_ids: list[str], month: str) -> dict[str, int]:
        if not tenant_ids:
            return {}
        values = self.client.mget([f"{MONTH_USED}{tenant_id}:{month}" for tenant_id in tenant_ids])
        return {tenant_id: int(value) for tenant_id, value in zip(tenant_ids, values, strict=True) if value is not None}

    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        tenant_windows = [TENANT_LIMIT + tenant_id, TENANT_BURST + tenant_id] if tenant_id else []
        self.client.delete(LIMIT + lookup_id, *tenant_windows)
