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
    KEY_MINUTE_WINDOW_PREFIX,
    KEY_RECORD_PREFIX,
    LAST_USED_STAMPS,
    RECORD_TTL_SECONDS,
    SCRIPT_CONSTANTS,
    TENANT_BURST_WINDOW_PREFIX,
    TENANT_MINUTE_WINDOW_PREFIX,
    TENANT_MONTH_UNITS_PREFIX,
    TENANT_RECORD_PREFIX,
    USAGE_MINUTE_PREFIX,
    USAGE_MINUTES_TO_ROLL_UP,
    Decision,
    GatewayStore,
    Month,
    current_month,
)


class _Process:
    """This process, as opposed to its parent: a new object in every forked child (no getpid() system call per
    request to notice a fork)."""


_process = _Process()


def _after_fork_in_child() -> None:
    global _process
    _process = _Process()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


def _gateway_source() -> str:
    """gateway.lua behind the declarations of the constants it uses, as Lua locals of the same names."""
    declarations = "".join(
        f"local {name} = {json.dumps(value) if isinstance(value, str) else int(value)}\n"
        for name, value in SCRIPT_CONSTANTS.items()
    )
    return declarations + _lua("gateway.lua")


def _bulk(value: bytes) -> bytes:
    """One argument of a Redis command in RESP."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


class RedisGatewayStore(GatewayStore):
    """The store shared by every process: each request is one EVALSHA of `lua/gateway.lua`."""

    def __init__(self, client):
        self.client = client
        self._gateway = client.register_script(_gateway_source())
        self._fill = client.register_script(_lua("fill.lua"))
        self._put = client.register_script(_lua("put.lua"))
        self._forget_last_used = client.register_script(_lua("forget_last_used.lua"))
        # The request's command in RESP, its constant parts encoded once: EVALSHA <sha> 4 KEYS... ARGV...
        # (4 keys, 5 arguments; see _script_input).
        self._command_head = b"*12\r\n" + b"".join(
            _bulk(part) for part in (b"EVALSHA", self._gateway.sha.encode(), b"4")
        )
        self._shared_keys = _bulk(LAST_USED_STAMPS.encode()) + _bulk(USAGE_MINUTES_TO_ROLL_UP.encode())
        self._month_args: tuple[Month | None, bytes] = (None, b"")
        self._local = threading.local()

    def _script_input(self, lookup_id: str, secret_hash: str, outcomes: list, cost: int) -> tuple[list, list]:
        keys = [
            KEY_RECORD_PREFIX + secret_hash, KEY_MINUTE_WINDOW_PREFIX + lookup_id, LAST_USED_STAMPS,
            USAGE_MINUTES_TO_ROLL_UP,
        ]  # fmt: skip
        month = current_month()
        outcomes_json = json.dumps(outcomes) if outcomes else ""
        return keys, [secret_hash, outcomes_json, str(cost), month.id, str(month.end)]

    def _packed_command(self, lookup_id: str, secret_hash: str, outcomes: list, cost: int) -> bytes:
        """_script_input as the EVALSHA command in RESP, with only the per-request parts encoded per call."""
        month = current_month()
        packed_month, month_args = self._month_args
        if packed_month is not month:  # once a month per process (current_month keeps one object)
            month_args = _bulk(month.id.encode()) + _bulk(b"%d" % month.end)
            self._month_args = (month, month_args)
        secret = secret_hash.encode()
        return b"".join((
            self._command_head,
            _bulk(KEY_RECORD_PREFIX.encode() + secret),
            _bulk(KEY_MINUTE_WINDOW_PREFIX.encode() + lookup_id.encode()),
            self._shared_keys,
            _bulk(secret),
            _bulk(json.dumps(outcomes).encode() if outcomes else b""),
            _bulk(b"%d" % cost),
            month_args,
        ))  # fmt: skip

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
        command = self._packed_command(lookup_id, secret_hash, outcomes, cost)
        # The pooled client's usual path: it reconnects, loads the script and retries under its own policy.
        pooled = functools.partial(
            self.evaluate, lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes, cost=cost
        )
        connection = self._own_connection()
        try:
            connection.send_packed_command([command])
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
        if getattr(local, "process", None) is not _process:  # new thread, or a forked worker: never share a socket
            pool = self.client.connection_pool
            local.connection, local.process = pool.connection_class(**pool.connection_kwargs), _process
        return local.connection

    def flush_outcomes(self, outcomes: list) -> None:
        keys, args = self._script_input("", "", outcomes, 0)
        self._gateway(keys=keys, args=args)

    def _hash_args(self, ttl: int, fields: dict) -> list:
        return [ttl, *[item for pair in fields.items() for item in pair]]

    def fill_record(self, lookup_id: str, fields: dict) -> None:
        self._fill(keys=[KEY_RECORD_PREFIX + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_record(self, lookup_id: str, fields: dict) -> None:
        self._put(keys=[KEY_RECORD_PREFIX + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def fill_tenant(self, tenant_id: str, fields: dict) -> None:
        self._fill(keys=[TENANT_RECORD_PREFIX + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_tenant(self, tenant_id: str, fields: dict) -> None:
        self._put(keys=[TENANT_RECORD_PREFIX + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def usage_minutes(self) -> list[int]:
        return [int(float(member)) for member in self.client.zrange(USAGE_MINUTES_TO_ROLL_UP, 0, -1)]

    def usage_read(self, minute: int) -> dict[str, dict[str, int]]:
        usage: dict[str, dict[str, int]] = {}
        for field, value in self.client.hgetall(f"{USAGE_MINUTE_PREFIX}{minute}").items():
            key_id, metric = field.decode().rsplit(":", 1)
            usage.setdefault(key_id, {})[metric] = int(value)
        return usage

    def usage_forget(self, minutes: list[int]) -> None:
        if minutes:
            self.client.zrem(USAGE_MINUTES_TO_ROLL_UP, *minutes)

    def last_used_read(self) -> dict[str, int]:
        return {field.decode(): int(value) for field, value in self.client.hgetall(LAST_USED_STAMPS).items()}

    def last_used_forget(self, stamps: dict[str, int]) -> None:
        if stamps:
            self._forget_last_used(keys=[LAST_USED_STAMPS], args=[item for pair in stamps.items() for item in pair])

    def month_units(self, tenant_ids: list[str], month: str) -> dict[str, int]:
        if not tenant_ids:
            return {}
        values = self.client.mget([f"{TENANT_MONTH_UNITS_PREFIX}{tenant_id}:{month}" for tenant_id in tenant_ids])
        return {tenant_id: int(value) for tenant_id, value in zip(tenant_ids, values, strict=True) if value is not None}

    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        tenant_windows = (
            [TENANT_MINUTE_WINDOW_PREFIX + tenant_id, TENANT_BURST_WINDOW_PREFIX + tenant_id] if tenant_id else []
        )
        self.client.delete(KEY_MINUTE_WINDOW_PREFIX + lookup_id, *tenant_windows)
