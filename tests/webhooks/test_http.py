"""The delivery client (webhooks/http.py) against a real receiver on 127.0.0.1."""

import json
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import wait_for
from webhooks.http import DRAIN_LIMIT_BYTES, MAX_ATTEMPT_SECONDS, RAMP_WAIT_SECONDS, PinnedClient, Request
from webhooks.ssrf import Destination, destination_check


@pytest.fixture
def pinned_client():
    return PinnedClient(pool_maxsize=2, connect_timeout=1, read_timeout=1)


def test_connections_are_kept_alive_between_deliveries(pinned_client, receiver):
    destination = destination_check(receiver.url())
    for _ in range(3):
        assert pinned_client.post(destination, body=b"{}", headers={}).status == 200
    assert len({request.client_port for request in receiver.received()}) == 1


def test_connections_are_reused_by_the_next_session_whatever_its_thread(pinned_client, receiver):
    """A task runs on any thread of the worker's pool: its session takes the connections the last one left,
    instead of opening (and, over TLS, handshaking) new ones to the same receivers."""
    destination = destination_check(receiver.url())

    def one_request():
        with pinned_client.session() as session:
            session.add(Request(destination, b"{}", {}), "only")
            finished = []
            while not finished:
                finished = session.poll(1.0)
            assert finished[0][1].status == 200

    for _ in range(3):
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert len(receiver.received()) == 3
    assert len({request.client_port for request in receiver.received()}) == 1


def test_sessions_at_the_same_time_never_share_a_multi_handle(pinned_client, receiver):
    """libcurl handles are not for concurrent use: two sessions open at once each hold their own."""
    with pinned_client.session() as first, pinned_client.session() as second:
        assert first._multi is not second._multi  # noqa: SLF001
    with pinned_client.session() as again:  # the one returned last, its connections warmest
        assert again._multi is first._multi  # noqa: SLF001


def test_new_connections_to_a_host_ramp_up_instead_of_arriving_at_once(receiver):
    """A burst of new connections overflowed a small receiver's listen queue (each dropped SYN cost a
    second): two at first, twice as many each time as many were answered, up to the pool's size."""
    client = PinnedClient(pool_maxsize=8, connect_timeout=1, read_timeout=2, concurrency=8)
    destination = destination_check(receiver.url())
    allowed = []
    with client.session() as session:
        for _ in range(4):
            allowed.append(session.room(destination))
            for n in range(allowed[-1]):
                session.add(Request(destination, b"{}", {}), n)
            finished = []
            while len(finished) < allowed[-1]:
                finished += session.poll(1.0)
    assert allowed == [2, 4, 8, 8]
    assert len({request.client_port for request in receiver.received()}) == 8
    with client.session() as session:  # the connections stay with the handle: no ramp the next time
        assert session.room(destination) == 8


def test_a_host_that_never_answers_still_gets_its_requests_a_few_at_a_time(receiver):
    """The ramp limits bursts of new connections, not requests: one unanswered for RAMP_WAIT_SECONDS
    no longer holds the next ones back (up to the pool's size)."""
    client = PinnedClient(pool_maxsize=4, connect_timeout=1, read_timeout=5, concurrency=8)
    receiver.script["/hang"] = [("hang", 30)]
    destination = destination_check(receiver.url("/hang"))
    with client.session() as session:
        assert session.room(destination) == 2
        session.add(Request(destination, b"{}", {}), 1)
        session.add(Request(destination, b"{}", {}), 2)
        assert session.room(destination) == 0
        wait_for(lambda: session.room(destination) == 2, timeout=3)
        session.add(Request(destination, b"{}", {}), 3)
        session.add(Request(destination, b"{}", {}), 4)
        time.sleep(RAMP_WAIT_SECONDS + 0.1)  # past the wait; the pool's size still holds
        assert session.room(destination) == 0
    receiver.release.set()


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
    assert client.total_timeout == MAX_ATTEMPT_SECONDS == 15


def test_the_connection_goes_to_the_checked_address_while_host_names_the_url(pinned_client, receiver):
    # The name resolves nowhere: only the pinned address can have been used.
    pinned = Destination("http", "hooks.invalid", receiver.port, "/hook?x=1", "127.0.0.1")
    response = pinned_client.post(pinned, body=b"{}", headers={"webhook-id": "msg_1"})
    assert response.status == 200
    (request,) = receiver.received("/hook?x=1")
    assert request.headers["Host"] == f"hooks.invalid:{receiver.port}"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["Content-Type"] == "application/json"
    assert "Expect" not in request.headers


def test_a_batch_goes_out_concurrently_and_answers_in_order(receiver):
    client = PinnedClient(pool_maxsize=4, connect_timeout=1, read_timeout=2, concurrency=4)
    receiver.script["/slow"] = [("slow", 0.5)]
    receiver.script["/gone"] = [("status", 410)]
    paths = ["/slow"] * 8 + ["/gone", "/hook"]
    started = time.monotonic()
    responses = client.post_many(
        [Request(destination_check(receiver.url(path)), f'{{"n":{n}}}'.encode(), {}) for n, path in enumerate(paths)]
    )
    elapsed = time.monotonic() - started
    assert [response.status for response in responses] == [200] * 8 + [410, 200]
    # 8 half-second requests, 4 at a time: two rounds, not eight.
    assert 1.0 <= elapsed < 3.0
    assert sorted(json.loads(r.body)["n"] for r in receiver.received("/slow")) == list(range(8))


def test_a_long_body_is_cut_without_an_error(pinned_client, receiver):
    receiver.script["/big"] = [("body", b"y" * (DRAIN_LIMIT_BYTES * 3))]
    response = pinned_client.post(destination_check(receiver.url("/big")), body=b"{}", headers={})
    assert response.status == 200 and response.error == "" and response.excerpt == "y" * 1024


def test_proxy_settings_in_the_environment_are_ignored(pinned_client, receiver, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    assert pinned_client.post(destination_check(receiver.url()), body=b"{}", headers={}).status == 200
    assert len(receiver.received()) == 1


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate names hooks.example.test, and the CA file to trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(cert_file)
    server.shutdown()
    server.server_close()


def test_tls_checks_the_url_host_name_on_the_pinned_connection(tls_receiver, settings):
    port, ca_file = tls_receiver
    settings.WEBHOOKS_CA_BUNDLE = ca_file
    client = PinnedClient(pool_maxsize=1, connect_timeout=2, read_timeout=2)
    named = client.post(Destination("https", "hooks.example.test", port, "/", "127.0.0.1"), body=b"{}", headers={})
    assert (named.status, named.excerpt, named.error) == (200, f"hooks.example.test:{port}", "")
    other = client.post(Destination("https", "other.example.test", port, "/", "127.0.0.1"), body=b"{}", headers={})
    assert other.status is None and other.error.startswith("TLS")


def test_an_untrusted_certificate_is_refused(tls_receiver):
    port, _ = tls_receiver  # the system's CAs do not include this self-signed one
    client = PinnedClient(pool_maxsize=1, connect_timeout=2, read_timeout=2)
    response = client.post(Destination("https", "hooks.example.test", port, "/", "127.0.0.1"), body=b"{}", headers={})
    assert response.status is None and response.error.startswith("TLS")


def test_a_batch_interrupted_midway_leaves_nothing_behind(receiver):
    """An exception mid-batch (here a bad body) must not leave a request in the client, where the next
    batch would take its answer for one of its own."""
    client = PinnedClient(pool_maxsize=2, connect_timeout=1, read_timeout=2, concurrency=2)
    receiver.script["/fail"] = [("status", 500)]
    with pytest.raises(TypeError):
        client.post_many([Request(destination_check(receiver.url("/fail")), b"{}", {}),
                          Request(destination_check(receiver.url()), None, {})])  # fmt: skip
    # Nothing stayed in the client's multi handle: a transfer left there would run (and its answer be
    # taken for one of the next batch's) on the next perform, which reports how many transfers run.
    multi, _ = client._state()  # noqa: SLF001 - the one place the client keeps transfers between batches
    assert multi.perform()[1] == 0
    responses = client.post_many([Request(destination_check(receiver.url()), b"{}", {}) for _ in range(2)])
    assert [response.status for response in responses] == [200, 200]


def test_a_session_returns_each_request_as_it_finishes_while_others_hang(receiver):
    """The waits overlap: a quick request's outcome comes back while a hanging one is still in flight, and
    closing the session leaves nothing in the thread's multi handle for the next one."""
    client = PinnedClient(pool_maxsize=4, connect_timeout=1, read_timeout=5)
    receiver.script["/hang"] = [("hang", 30)]
    with client.session() as session:
        session.add(Request(destination_check(receiver.url("/hang")), b"{}", {}), "hanging")
        session.add(Request(destination_check(receiver.url("/hook")), b"{}", {}), "quick")
        finished = []
        while not finished:
            finished = session.poll(1.0)
        assert [(key, response.status) for key, response in finished] == [("quick", 200)]
        assert len(session) == 1  # the hanging request is still on the wire
    assert len(session) == 0
    with client.session() as session:  # the next session sees only its own requests
        session.add(Request(destination_check(receiver.url("/hook")), b"{}", {}), "next")
        finished = []
        while not finished:
            finished = session.poll(1.0)
        assert [key for key, _ in finished] == ["next"]
