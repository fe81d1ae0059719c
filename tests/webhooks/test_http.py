"""The delivery client (webhooks/http.py) against a real receiver on 127.0.0.1."""

import pytest

from webhooks.http import MAX_ATTEMPT_SECONDS, PinnedClient
from webhooks.ssrf import destination_check


@pytest.fixture
def pinned_client():
    return PinnedClient(pool_maxsize=2, connect_timeout=1, read_timeout=2)


def test_connections_are_kept_alive_between_deliveries(pinned_client, receiver):
    destination = destination_check(receiver.url())
    for _ in range(3):
        assert pinned_client.post(destination, body=b"{}", headers={}).status == 200
    assert len({request.client_port for request in receiver.received()}) == 1


def test_redirects_are_not_followed(pinned_client, receiver):
    receiver.script["/hook"] = [("redirect", "/elsewhere")]
    response = pinned_client.post(destination_check(receiver.url()), body=b"{}", headers={})
    assert response.status == 302
    assert receiver.received("/elsewhere") == []


def test_response_excerpt_is_cut_to_one_kilobyte(pinned_client, receiver):
    receiver.script["/hook"] = [("status", 500)]
    response = pinned_client.post(destination_check(receiver.url()), body=b"{}", headers={})
    assert response.status == 500 and len(response.excerpt) == 1024


def test_read_timeout_and_dropped_connection_are_errors_not_exceptions(pinned_client, receiver):
    receiver.script["/slow"] = [("slow", 3)]
    receiver.script["/drop"] = [("drop",)]
    slow = pinned_client.post(destination_check(receiver.url("/slow")), body=b"{}", headers={})
    dropped = pinned_client.post(destination_check(receiver.url("/drop")), body=b"{}", headers={})
    assert slow.status is None and "Timeout" in slow.error and slow.duration_ms < 3000
    assert dropped.status is None and dropped.error


def test_an_attempt_never_takes_more_than_fifteen_seconds():
    client = PinnedClient(pool_maxsize=1, connect_timeout=10, read_timeout=30)
    assert client._timeout.total == MAX_ATTEMPT_SECONDS == 15
