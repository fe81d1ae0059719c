"""Revocation reaches every process: no process keeps a copy of a key's state between requests."""

import subprocess
import sys
import textwrap

import pytest

from apikeys import services
from apikeys.gateway import base
from tests.conftest import REPO_ROOT

CHECKER = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from apikeys.gateway.decision import decide
    from apikeys.keyformat import parse_key
    for line in sys.stdin:
        print(decide(parse_key(line.strip())).code, flush=True)
    """
)


@pytest.mark.django_db(transaction=True)
def test_revocation_is_seen_by_a_second_process_on_its_next_request(test_database_env, tenant):
    api_key, raw_key = services.apikey_create(tenant=tenant, name="ci", scopes=["websites:read"])
    other = subprocess.Popen(
        [sys.executable, "-c", CHECKER],
        cwd=REPO_ROOT,
        env=test_database_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        other.stdin.write(raw_key + "\n")
        other.stdin.flush()
        assert int(other.stdout.readline()) == base.OK  # warm in the other process
        services.apikey_revoke(api_key=api_key, revoked_by="test", reason="leaked")  # commits, then publishes
        other.stdin.write(raw_key + "\n")
        other.stdin.flush()
        assert int(other.stdout.readline()) == base.REVOKED
    finally:
        other.stdin.close()
        other.wait(timeout=30)
