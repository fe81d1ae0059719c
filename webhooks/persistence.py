"""The delivery rows' writes on the hot path, a statement each for a whole batch.

The ORM's per-row, per-field work (bulk_create, an UPDATE per outcome) cost more CPU than the batch's
requests. On PostgreSQL the rows travel as one JSON parameter (encoded in C; psycopg's client-side quoting
of typed arrays cost as much again) that jsonb_to_recordset unpacks, and data-modifying WITH queries write
deliveries and attempts together. Every identifier in the SQL comes from the models' metadata and every
value is a parameter (hence the S608 waivers). Other databases (SQLite, embedded mode) take the ORM's way.
"""

import functools
import json
import uuid
from datetime import datetime

from django.db import connection

from .models import Attempt, Delivery

DELIVERY_INSERT = ["id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                   "last_attempt_at", "created_at", "finished_at", "lease_owner", "lease_expires_at"]  # fmt: skip
ATTEMPT_INSERT = ["delivery", "number", "started_at", "duration_ms", "status_code", "succeeded", "error",
                  "response_excerpt", "manual", "state"]  # fmt: skip
DELIVERY_OUTCOME = ["id", "status", "next_attempt_at", "queued_until", "finished_at"]
ATTEMPT_OUTCOME = ["delivery", "number", "state", "started_at", "duration_ms", "status_code", "succeeded", "error",
                   "response_excerpt"]  # fmt: skip


def text(value: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold NUL; a receiver's body may. Refusing it would fail the batch.
    return value.replace("\x00", "\ufffd")


def _json_encoder() -> json.JSONEncoder:
    """An encoder for one statement's rows: what json cannot encode by itself (datetimes, UUIDs; called from
    its C encoder for these values only) is converted once per distinct value. A batch's rows repeat the
    same few: its claim time, lease expiry, event and endpoint ids."""
    converted: dict = {}  # by id(): the rows keep each value alive while they are encoded; UUID hashes in Python

    def default(value):
        try:
            return converted[id(value)]
        except KeyError:
            pass
        if isinstance(value, datetime):
            text = value.isoformat()
        elif isinstance(value, uuid.UUID):
            text = str(value)
        else:
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        converted[id(value)] = text
        return text

    return json.JSONEncoder(default=default)


@functools.cache
def _recordset(model, names: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], str]:
    """(column, attribute) pairs, quoted columns and the `jsonb_to_recordset(...)` source of a model's columns."""
    fields = [model._meta.get_field(name) for name in names]
    columns = [connection.ops.quote_name(field.column) for field in fields]
    definition = ", ".join(
        f"{column} {field.db_type(connection)}" for column, field in zip(columns, fields, strict=True)
    )
    pairs = tuple((field.column, field.attname) for field in fields)
    return pairs, tuple(columns), f"jsonb_to_recordset(%s::jsonb) AS v({definition})"  # cached: immutable


def _records(model, names: list[str], objects: list) -> tuple[tuple[str, ...], str, str]:
    """The quoted columns, `jsonb_to_recordset(%s::jsonb) AS v(column type, ...)` and its JSON parameter;
    objects are instances of the model or dicts keyed by attribute name."""
    pairs, columns, source = _recordset(model, tuple(names))
    if objects and isinstance(objects[0], dict):
        rows = [{column: obj[attname] for column, attname in pairs} for obj in objects]
    else:
        rows = [{column: getattr(obj, attname) for column, attname in pairs} for obj in objects]
    return columns, source, _json_encoder().encode(rows)


def deliveries_insert(deliveries: list, attempts: list[dict]) -> None:
    """Insert new deliveries (objects with Delivery's attributes) and the attempts they start, one statement."""
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create([delivery.as_model() for delivery in deliveries])
        Attempt.objects.bulk_create([Attempt(**attempt) for attempt in attempts])
        return
    quote = connection.ops.quote_name
    columns, source, rows = _records(Delivery, DELIVERY_INSERT, deliveries)
    sql = f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(columns)}) SELECT * FROM {source}"  # noqa: S608
    params = [rows]
    if attempts:
        columns, source, attempt_rows = _records(Attempt, ATTEMPT_INSERT, attempts)
        insert = f"INSERT INTO {quote(Attempt._meta.db_table)} ({', '.join(columns)}) SELECT * FROM {source}"  # noqa: S608
        sql, params = f"WITH deliveries AS ({sql}) {insert}", [rows, attempt_rows]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def outcomes_write(*, owner: str, deliveries: list[dict], attempts: list[dict]) -> None:
    """Write finished attempts and their deliveries' new state, releasing the deliveries' lease, in one
    statement. A delivery whose lease another worker took over (it was resent) keeps its row; its attempt
    still gets its real outcome."""
    if connection.vendor != "postgresql":
        for row in deliveries:
            Delivery.objects.filter(pk=row["id"], lease_owner=owner).update(
                lease_owner="", lease_expires_at=None, **{k: v for k, v in row.items() if k != "id"}
            )
        for row in attempts:
            Attempt.objects.filter(delivery_id=row["delivery_id"], number=row["number"]).update(
                **{k: v for k, v in row.items() if k not in ("delivery_id", "number")}
            )
        return
    quote = connection.ops.quote_name
    columns, source, delivery_rows = _records(Delivery, DELIVERY_OUTCOME, deliveries)
    assignments = ", ".join(f"{column} = v.{column}" for column in columns[1:])
    owner_column, expires_column = quote("lease_owner"), quote("lease_expires_at")
    update_deliveries = (
        f"UPDATE {quote(Delivery._meta.db_table)} AS t SET {assignments}, {owner_column} = '',"  # noqa: S608
        f" {expires_column} = NULL FROM {source} WHERE t.id = v.id AND t.{owner_column} = %s"
    )
    columns, source, attempt_rows = _records(Attempt, ATTEMPT_OUTCOME, attempts)
    assignments = ", ".join(f"{column} = v.{column}" for column in columns[2:])
    update_attempts = (
        f"UPDATE {quote(Attempt._meta.db_table)} AS t SET {assignments} FROM {source}"  # noqa: S608
        f" WHERE t.{columns[0]} = v.{columns[0]} AND t.{columns[1]} = v.{columns[1]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH deliveries AS ({update_deliveries}) {update_attempts}", [delivery_rows, owner, attempt_rows]
        )
