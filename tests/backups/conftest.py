import contextlib
import os
import shutil
import tempfile

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from backups.engines import get_engine, reset_engines
from backups.engines.pgbackrest import PgBackRestEngine


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/backups" in str(item.fspath):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(autouse=True)
def _fresh_engines():
    reset_engines()
    yield
    reset_engines()


@pytest.fixture
def engine() -> PgBackRestEngine:
    engine = get_engine("pgbackrest")
    assert isinstance(engine, PgBackRestEngine)
    return engine


def engine_with(**changes) -> PgBackRestEngine:
    options = dict(settings.BACKUP_ENGINES["pgbackrest"]["OPTIONS"])
    options.update(changes)
    return PgBackRestEngine(alias="pgbackrest", **options)


@pytest.fixture(scope="module")
def base_full_backup(django_db_setup, django_db_blocker):
    """One full backup shared by the module: the base of PITR, incrementals and expiry."""
    with django_db_blocker.unblock():
        engine = get_engine("pgbackrest")
        # stanza-create + check: also re-creates the stanza in the S3 repository when moto (memory only)
        # was restarted by an earlier test, which would otherwise hold WAL archiving up.
        engine.setup()
        return engine.backup(kind="full")


@pytest.fixture
def scratch_dir():
    """A folder the database's OS user can traverse (pytest's tmp_path is 0700 under root)."""
    path = tempfile.mkdtemp(prefix="platform-test-")
    os.chmod(path, 0o755)  # noqa: S103
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def raw_connection():
    """A second, autocommit connection to the test database: another client writing concurrently."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with contextlib.closing(psycopg.connect(**params, autocommit=True)) as conn:
        yield conn
