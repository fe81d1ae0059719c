import ctypes
import signal
import time

PR_SET_PDEATHSIG = 1
# Looked up here, in the parent: the child between fork and exec must not load anything (another thread of
# the test process may have held the dynamic loader's lock when it forked).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:
    """A Popen preexec_fn for servers and workers a test starts: the kernel SIGKILLs the child when the test
    process exits, even by SIGKILL, so a killed run leaves no worker consuming the next run's queues."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def serving_in_request_thread(app):
    """A live server's WSGI wrapper: each request reads the primary (like the test code that set up its
    data) and is finished, body and close() included, in the thread that serves it, whose database
    connections are then closed (so the test database can be flushed and dropped).

    Not a generator on purpose: a response generator the server never finished is finalised by the
    garbage collector in whatever thread runs it, often the test's own; its close() then sent
    request_finished there, and Django's close_old_connections closed the test thread's connection in
    the middle of a transaction (the teardown flush failed: "the connection is closed").
    """

    def wrapped(environ, start_response):
        from django.db import connections

        from dbrouting.routing import use_primary

        try:
            with use_primary():
                response = app(environ, start_response)
                try:
                    body = b"".join(response)
                finally:
                    if hasattr(response, "close"):
                        response.close()
        finally:
            connections.close_all()
        return [body]

    return wrapped


def stack(action: str, service: str) -> None:
    """`deploy/local/stack <action> <service>`: fault injection on the local stack (stop, start)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "deploy" / "local" / "stack"
    subprocess.run(
        [sys.executable, str(script), action, service], check=True, capture_output=True, timeout=120, env=os.environ
    )


def hostnames_verified(*hostnames: str) -> None:
    """Test set-up: these custom hostnames are verified, as their DNS check would leave them (the tests of
    verification itself, tests/tenants/test_hostname_verification.py, go through a real DNS server)."""
    from django.utils import timezone

    from tenants.models import Hostname

    updated = Hostname.objects.filter(hostname__in=hostnames).update(
        status=Hostname.Status.VERIFIED, verified_at=timezone.now(), next_check_at=None, last_error=""
    )
    assert updated == len(hostnames), f"not every hostname of {hostnames} exists"


def operator_create(username: str, password: str, role: str):
    """A staff user in one operator role (console.roles): the API, the admin and the commands check the role."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username=username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user
