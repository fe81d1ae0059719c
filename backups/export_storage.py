"""Where tenant exports live: S3 through boto3 in real mode, a local folder in embedded mode."""

import shutil
from pathlib import Path

from django.conf import settings

from .engines.base import BackupError


def _client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.AWS_DEFAULT_REGION,
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
    )


def export_put(*, key: str, path: Path) -> str:
    """Store a finished archive; returns its location (s3://bucket/key or a file path)."""
    if settings.S3_BUCKET:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            _client().upload_file(str(path), settings.S3_BUCKET, key)
        except (BotoCoreError, ClientError) as exc:
            raise BackupError(f"uploading the tenant export to S3 failed: {exc}", code="storage_unavailable") from exc
        return f"s3://{settings.S3_BUCKET}/{key}"
    target = Path(settings.BACKUP_TENANT_EXPORT_DIR) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return str(target)


def export_fetch(*, location: str, path: Path) -> None:
    if location.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = location[5:].split("/", 1)
        try:
            _client().download_file(bucket, key, str(path))
        except (BotoCoreError, ClientError) as exc:
            raise BackupError(f"downloading {location} failed: {exc}", code="storage_unavailable") from exc
        return
    if not Path(location).exists():
        raise BackupError(f"export file {location} does not exist", code="not_found")
    shutil.copyfile(location, path)
