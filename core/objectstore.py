"""Object storage, one pluggable interface: S3 (boto3; an endpoint for S3-compatible stores) or a local
folder (embedded).

Configured like Django's STORAGES, in OBJECT_STORAGES: {alias: {"BACKEND": ..., "OPTIONS": {...}}}.
"default" holds deployed bundles; "tenant_exports" the tenant export archives. Objects are written once
under immutable keys; readers get the bytes and the metadata written with them (Content-Type,
Cache-Control), so a CDN pointed at the bucket serves what the origin serves.

Django's own Storage API (and django-storages' S3 backend on it) was considered: it has no per-object
Content-Type/Cache-Control/metadata on save, no server-side copy and no concurrent batch upload, which
the deployment path needs, so the stores keep this small interface and share Django's backend handler.
"""

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.core.exceptions import ImproperlyConfigured

from .backends import BackendHandler

logger = logging.getLogger(__name__)

# Concurrent PUTs per upload: S3 latency, not bandwidth, bounds many small files.
UPLOAD_CONCURRENCY = 16


class ObjectNotFound(Exception):
    pass


class ObjectStorageError(Exception):
    pass


class ObjectStorageImproperlyConfigured(ImproperlyConfigured):
    pass


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    content_type: str
    cache_control: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectPut:
    key: str
    body: bytes
    content_type: str
    cache_control: str
    metadata: dict = field(default_factory=dict)


class ObjectStore:
    alias = "default"

    def location(self, key: str) -> str:
        """Where an object is, in a form an operator can use (s3://bucket/key or a file path)."""
        raise NotImplementedError

    def key_from_location(self, location: str) -> str | None:
        """The key of a location this store produced, or None when it is not in this store."""
        raise NotImplementedError

    def put(self, item: ObjectPut) -> None:
        raise NotImplementedError

    def get(self, key: str) -> StoredObject:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def list_keys(self, prefix: str) -> Iterator[str]:
        raise NotImplementedError

    # Streaming: a large object never has to fit in memory.
    def put_file(self, item: ObjectPut, fileobj: BinaryIO) -> None:
        """Store fileobj's content (from its current position) under item.key; item.body is ignored."""
        raise NotImplementedError

    def download(self, key: str, fileobj: BinaryIO) -> None:
        """Write an object's content into fileobj, a chunk at a time."""
        raise NotImplementedError

    def copy(self, source_key: str, item: ObjectPut) -> None:
        """Store the content of source_key under item.key with item's headers (server-side where possible)."""
        raise NotImplementedError

    def put_many(self, items: Iterable[ObjectPut], *, concurrency: int = UPLOAD_CONCURRENCY) -> int:
        """Write objects concurrently; the first failure is raised after in-flight writes finish."""
        count = 0
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="objectstore") as pool:
            for _ in pool.map(self.put, items):
                count += 1
        return count


MIB = 1024 * 1024


def _bounded_transfer():
    """At most two 8 MiB parts of one upload in memory at a time."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=2)
    config.max_in_memory_upload_chunks = 2
    return config


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        *,
        bucket: str,
        alias: str = "default",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        concurrency: int = UPLOAD_CONCURRENCY,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int = 5,
    ):
        import boto3
        from botocore.config import Config

        if not bucket:
            raise ObjectStorageImproperlyConfigured(f"OBJECT_STORAGES[{alias!r}]: S3ObjectStore needs a bucket")
        self.alias = alias
        self.bucket = bucket
        timeouts = {name: value for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout))
                    if value is not None}  # fmt: skip
        # A boto3 client is thread-safe; one pool sized for the upload concurrency avoids reconnects.
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            config=Config(
                max_pool_connections=concurrency * 2,
                retries={"max_attempts": max_attempts, "mode": "standard"},
                **timeouts,
            ),
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_from_location(self, location: str) -> str | None:
        prefix = f"s3://{self.bucket}/"
        return location[len(prefix) :] if location.startswith(prefix) and len(location) > len(prefix) else None

    def put(self, item: ObjectPut) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=item.key,
                Body=item.body,
                ContentType=item.content_type,
                CacheControl=item.cache_control,
                Metadata=item.metadata,
            )
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStorageError(f"storing {item.key} failed: {exc}") from exc

    def get(self, key: str) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise ObjectStorageError(f"reading {key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ObjectStorageError(f"reading {key} failed: {exc}") from exc
        return StoredObject(
            body=response["Body"].read(),
            content_type=response.get("ContentType", "application/octet-stream"),
            cache_control=response.get("CacheControl", ""),
            metadata=response.get("Metadata", {}),
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def put_file(self, item: ObjectPut, fileobj: BinaryIO) -> None:
        from boto3.exceptions import S3UploadFailedError as S3TransferFailed
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # boto3's managed transfer: one PUT for a small file, a multipart upload (no size limit) for a
            # large one such as a tenant export. A file object's parts are read into memory, so their number
            # in flight is bounded: boto3's defaults (10 x 8 MiB, per upload) cost a web worker ~100 MiB.
            self.client.upload_fileobj(
                fileobj, self.bucket, item.key, Config=_bounded_transfer(),
                ExtraArgs={"ContentType": item.content_type, "CacheControl": item.cache_control,
                           "Metadata": item.metadata},
            )  # fmt: skip
        except (BotoCoreError, ClientError, S3TransferFailed) as exc:
            raise ObjectStorageError(f"storing {item.key} failed: {exc}") from exc

    def download(self, key: str, fileobj: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                fileobj.write(chunk)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise ObjectStorageError(f"reading {key} failed: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise ObjectStorageError(f"reading {key} failed: {exc}") from exc

    def copy(self, source_key: str, item: ObjectPut) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=item.key, CopySource={"Bucket": self.bucket, "Key": source_key},
                MetadataDirective="REPLACE", ContentType=item.content_type, CacheControl=item.cache_control,
                Metadata=item.metadata,
            )  # fmt: skip
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStorageError(f"copying {source_key} to {item.key} failed: {exc}") from exc

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"]


class LocalObjectStore(ObjectStore):
    """Embedded mode: a folder; metadata lives beside each object in a `.meta` tree."""

    def __init__(self, *, root: Path | str, alias: str = "default"):
        self.alias = alias
        self.root = Path(root)
        self.meta_root = self.root / ".meta"

    def location(self, key: str) -> str:
        return str(self._path(key))

    def key_from_location(self, location: str) -> str | None:
        try:
            key = Path(location).resolve().relative_to(self.root.resolve())
        except ValueError:
            return None
        return None if not key.parts or key.parts[0] == ".meta" else key.as_posix()

    def _path(self, key: str, *, meta: bool = False) -> Path:
        base = self.meta_root if meta else self.root
        path = (base / key).resolve()
        if not str(path).startswith(str(base.resolve()) + os.sep):
            raise ObjectStorageError(f"key {key!r} leaves the storage folder")
        return path.with_name(path.name + ".json") if meta else path

    def put(self, item: ObjectPut) -> None:
        for path, data in (
            (self._path(item.key), item.body),
            (
                self._path(item.key, meta=True),
                json.dumps(
                    {"content_type": item.content_type, "cache_control": item.cache_control, "metadata": item.metadata}
                ).encode(),
            ),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)

    def get(self, key: str) -> StoredObject:
        try:
            body = self._path(key).read_bytes()
            meta = json.loads(self._path(key, meta=True).read_text())
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        return StoredObject(body=body, content_type=meta["content_type"], cache_control=meta["cache_control"],
                            metadata=meta.get("metadata", {}))  # fmt: skip

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._path(key, meta=True).unlink(missing_ok=True)

    def put_file(self, item: ObjectPut, fileobj: BinaryIO) -> None:
        path = self._path(item.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        with open(temporary, "wb") as target:
            shutil.copyfileobj(fileobj, target, 1024 * 1024)
        os.replace(temporary, path)
        self._write_meta(item)

    def download(self, key: str, fileobj: BinaryIO) -> None:
        try:
            with open(self._path(key), "rb") as source:
                shutil.copyfileobj(source, fileobj, 1024 * 1024)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def copy(self, source_key: str, item: ObjectPut) -> None:
        try:
            with open(self._path(source_key), "rb") as source:
                self.put_file(item, source)
        except FileNotFoundError as exc:
            raise ObjectNotFound(source_key) from exc

    def _write_meta(self, item: ObjectPut) -> None:
        path = self._path(item.key, meta=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"content_type": item.content_type, "cache_control": item.cache_control, "metadata": item.metadata}
        temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(meta))
        os.replace(temporary, path)

    def list_keys(self, prefix: str) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and self.meta_root not in path.parents:
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key


object_stores: BackendHandler[ObjectStore] = BackendHandler("OBJECT_STORAGES", ObjectStorageImproperlyConfigured)


def object_store(alias: str = "default") -> ObjectStore:
    """The store configured under `alias` in OBJECT_STORAGES, built once."""
    return object_stores[alias]
