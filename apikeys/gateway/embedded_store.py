"""The gateway's in-memory store for embedded mode, told about writes made by other processes.

Embedded mode serves from one process, so its in-memory store is the one shared state for requests.
A management command (`apikey revoke`, `tenant suspend`) runs in a process of its own, though: its
write reaches the database and its own memory, not the server's. Every write to a record (key or
tenant) therefore also replaces a small generation file under PLATFORM_VAR_DIR (after the database
commit: the services publish on commit), and the server checks that file's identity before each
decision (one stat call). When it changed, the cached key and tenant records are dropped and refilled
from the database on their next use; limit windows and usage counters stay, they live only here.

A fill that raced a write is not kept: a record read from the database before another process's
commit but stored after the generation moved is skipped, and the next lookup reads it again.
"""

import os
import threading
import uuid
from pathlib import Path

from django.conf import settings

from .memory_store import MemoryGatewayStore


class EmbeddedGatewayStore(MemoryGatewayStore):
    def __init__(self, generation_path: Path | None = None):
        super().__init__()
        self.generation_path = Path(generation_path or Path(settings.VAR_DIR) / "gateway.generation")
        self._seen = self._generation()
        self._thread = threading.local()

    def _generation(self) -> tuple:
        try:
            stat = os.stat(self.generation_path)
        except FileNotFoundError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _refresh(self) -> tuple:
        generation = self._generation()
        if generation != self._seen:
            with self._lock:
                self.records.clear()
                self.tenants.clear()
                self._seen = generation
        self._thread.generation = generation
        return generation

    def _bump(self) -> None:
        # A new file each time (new inode), so a reader never mistakes two writes in one clock tick.
        temporary = self.generation_path.with_name(f".{self.generation_path.name}.{uuid.uuid4().hex}")
        temporary.write_text(uuid.uuid4().hex)
        os.replace(temporary, self.generation_path)

    def _fill_is_current(self) -> bool:
        return getattr(self._thread, "generation", None) == self._generation()

    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1):
        self._refresh()
        return super().evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes, cost=cost)

    def fill_record(self, lookup_id: str, fields: dict) -> None:
        if self._fill_is_current():
            super().fill_record(lookup_id, fields)

    def fill_tenant(self, tenant_id: str, fields: dict) -> None:
        if self._fill_is_current():
            super().fill_tenant(tenant_id, fields)

    def put_record(self, lookup_id: str, fields: dict) -> None:
        super().put_record(lookup_id, fields)
        self._bump()

    def put_tenant(self, tenant_id: str, fields: dict) -> None:
        super().put_tenant(tenant_id, fields)
        self._bump()
