"""deploy/local/stack's pgBackRest service, as `./bin/test` and a developer's `down` then `up` meet it."""

import fcntl
import os
import pwd
import threading
from pathlib import Path

from tests.helpers import stack


def test_start_waits_for_an_archive_push_that_still_holds_the_stanza_lock(engine):
    """An archive-push the last primary started can outlive it by seconds and hold the stanza's archive
    lock; `up` then failed on stanza-create ("unable to acquire lock"), leaving half a stack running."""
    lock = Path(engine.config_path.parent, "lock", f"{engine.stanza}-archive.lock")
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o640)
    user = pwd.getpwnam(engine.os_user)
    os.chown(lock, user.pw_uid, user.pw_gid)  # pgBackRest opens it as the database's OS user
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as pgBackRest takes it
    released = threading.Event()

    def release():
        released.set()
        os.close(descriptor)

    timer = threading.Timer(3, release)
    timer.start()
    try:
        stack("start", "pgbackrest")  # stanza-create and check, as `up` runs them
    finally:
        timer.cancel()
        if not released.is_set():
            release()
    assert released.is_set()
