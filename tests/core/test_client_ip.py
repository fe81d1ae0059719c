"""The client address per-IP limits count, behind trusted proxies (core/client_ip.py)."""

import pytest
from django.test import RequestFactory

from core.client_ip import client_ip


def _ip(remote: str, forwarded: str | None = None) -> str:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **extra))


def test_without_trusted_proxies_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXIES, settings.TRUSTED_PROXY_COUNT = [], 0
    assert _ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),  # ingress -> app
        ("10.0.0.2", "198.51.100.7, 10.0.0.5", "198.51.100.7"),  # CDN -> ingress -> app
        ("10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a client's own X-Forwarded-For is not believed
        ("10.0.0.2", "1.1.1.1,2.2.2.2 , 198.51.100.7,10.0.0.9", "198.51.100.7"),
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # not from a trusted proxy: its header means nothing
        ("10.0.0.2", "198.51.100.7:51234", "198.51.100.7"),  # with a port
        ("10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
        ("10.0.0.2", "2001:db8::7", "2001:db8::7"),
        ("10.0.0.2", "not-an-address, 10.0.0.3", "10.0.0.3"),  # unreadable behind a proxy: stop at that proxy
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),  # all trusted: the leftmost
        ("::ffff:10.0.0.2", "198.51.100.7", "198.51.100.7"),  # a v4-mapped proxy address
        ("10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_trusted_proxy_networks_read_from_the_right(settings, remote, forwarded, client):
    settings.TRUSTED_PROXIES, settings.TRUSTED_PROXY_COUNT = ["10.0.0.0/8", "::ffff:10.0.0.0/104"], 0
    assert _ip(remote, forwarded) == client


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("198.51.100.7, 10.0.0.5", "198.51.100.7"),
        ("6.6.6.6, 198.51.100.7, 10.0.0.5", "198.51.100.7"),  # whatever the client put on the left
        ("10.0.0.5", "10.0.0.2"),  # fewer hops than proxies: the request did not come through them all
        ("garbage, 10.0.0.5", "10.0.0.2"),
    ],
)
def test_a_hop_count(settings, forwarded, client):
    settings.TRUSTED_PROXIES, settings.TRUSTED_PROXY_COUNT = [], 2
    assert _ip("10.0.0.2", forwarded) == client


def test_no_remote_address_is_one_budget_not_an_error(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert _ip("", "198.51.100.7") == "0.0.0.0"  # noqa: S104 - an address, not a bind


def test_a_bad_network_stops_the_process_with_one_line():
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {
        **os.environ,
        "TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.300/32",
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
    }
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: TRUSTED_PROXIES: '10.0.0.300/32' is not an address or a network (CIDR)"
    ]


# Every test's client is 127.0.0.1: each test starts with no per-address counts (tests/conftest.py), or the
# counts of earlier tests refuse its requests (a browser test's operator login was refused that way).
def _failed_authentications(client, count: int) -> list[int]:
    unknown_key = {"HTTP_AUTHORIZATION": "Bearer plk_test_" + "C" * 50}
    return [client.get("/api/v1/websites/", **unknown_key).status_code for _ in range(count)]


def test_one_test_uses_up_the_failed_authentication_rate_of_its_address(client, settings, db):
    settings.API_KEY_AUTH_FAILURE_RATE = "2/h"
    assert _failed_authentications(client, 3) == [401, 401, 429]


def test_the_next_test_starts_with_no_counts_from_the_one_before(client, settings, db):
    settings.API_KEY_AUTH_FAILURE_RATE = "2/h"
    assert _failed_authentications(client, 1) == [401]
