"""The one lease of every long job: an owner token that names its process, and a lease kept alive by a
thread while the work blocks (core/leases.py)."""

import logging
import os
import re
import socket
import time

import pytest

from backups.models import TenantExport
from core.leases import Lease, lease_kept, lease_owner_token, lease_process, lease_taken


def test_an_owner_token_names_its_process_and_fits_the_column(monkeypatch):
    token = lease_owner_token()
    host_pid = f"{socket.gethostname()}:{os.getpid()}"
    assert re.fullmatch(rf"{re.escape(host_pid)}:[0-9a-f]{{8}}", token)
    assert lease_process(token) == host_pid and lease_owner_token() != token
    # A long host name is cut, never the pid nor the tag that keeps two leases apart.
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 100)
    long = lease_owner_token()
    assert len(long) == 64 and re.fullmatch(rf"h+:{os.getpid()}:[0-9a-f]{{8}}", long)
    assert lease_process(long) == long.rsplit(":", 1)[0]
    # Owners written before tokens named their process (a uuid, a backup's host:pid) are shown as they are.
    assert lease_process("4b1c0e9d2f6a4e0c8d7b3a2f1e0d9c8b") == "4b1c0e9d2f6a4e0c8d7b3a2f1e0d9c8b"
    assert lease_process("web-1:4242") == "web-1:4242"


@pytest.mark.django_db(transaction=True)
def test_a_kept_lease_is_renewed_until_another_holder_takes_it(caplog):
    export = TenantExport.objects.create(**lease_taken(1.0))
    first = export.lease_expires_at
    with caplog.at_level(logging.WARNING, logger="core.leases"), lease_kept(Lease.of(export, 1.0)) as lease:
        time.sleep(0.8)
        renewed = TenantExport.objects.get(pk=export.pk).lease_expires_at
        assert renewed > first and lease.owner == export.lease_owner
        TenantExport.objects.filter(pk=export.pk).update(lease_owner="another")
        time.sleep(1.2)
        taken = TenantExport.objects.get(pk=export.pk).lease_expires_at
        time.sleep(0.6)
        # The thread stopped at its first renewal the new holder refused: nothing written since.
        assert TenantExport.objects.get(pk=export.pk).lease_expires_at == taken
    assert "the lease was taken over; renewals stop" in caplog.text
