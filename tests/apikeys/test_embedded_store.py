"""apikeys/gateway/embedded_store.py: a write made by another process (a management command) reaches the server.

Two stores on one generation file stand for the server process and a command's process; the
end-to-end version, with ./bin/run and real commands, is tests/platform_site/test_embedded_run.py.
"""

from apikeys.gateway import base
from apikeys.gateway.embedded_store import EmbeddedGatewayStore
from apikeys.keyformat import generate_key


def _tenant(status: str) -> dict:
    return base.tenant_fields(status=status, tier="free", burst=None, minute=100, quota=None, month="", month_units=0)


def _record(parsed, **changes) -> dict:
    fields = {"h": parsed.secret_hash, "id": "k1", "t": "t1", "sc": "websites:read", "exp": "0", "lim": "", "rev": "0"}
    return fields | changes


def _code(store, parsed) -> str:
    return store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code


def _served(store, parsed) -> None:
    assert _code(store, parsed) == base.MISS
    store.fill_record(parsed.lookup_id, _record(parsed))
    assert _code(store, parsed) == base.TENANT_MISS
    store.fill_tenant("t1", base.tenant_fields(status="active", tier="free", burst=None, minute=100, quota=None,
                                              month="", month_units=0))  # fmt: skip
    assert _code(store, parsed) == base.OK


def test_a_write_in_another_process_drops_the_servers_cached_records(tmp_path):
    generation = tmp_path / "gateway.generation"
    server, command = EmbeddedGatewayStore(generation), EmbeddedGatewayStore(generation)
    _, parsed = generate_key("test")
    _served(server, parsed)
    for _ in range(5):
        assert _code(server, parsed) == base.OK

    command.put_record(parsed.lookup_id, _record(parsed, rev="1"))  # `apikey revoke`, after its commit
    # The server reads the key again (from the database, where it is now revoked) on the next request.
    assert _code(server, parsed) == base.MISS
    server.fill_record(parsed.lookup_id, _record(parsed, rev="1"))
    assert _code(server, parsed) == base.REVOKED

    # Limit windows are the server's own and survive the refresh: 6 requests counted before, 94 left.
    _, other = generate_key("test")
    server.fill_record(other.lookup_id, _record(other, id="k2"))
    command.put_tenant("t1", _tenant("active"))
    assert _code(server, other) == base.MISS
    server.fill_record(other.lookup_id, _record(other, id="k2"))
    assert _code(server, other) == base.TENANT_MISS
    server.fill_tenant("t1", _tenant("active"))
    codes = [_code(server, other) for _ in range(100)]
    assert codes.count(base.OK) == 94 and codes[-1] == base.RATE_LIMITED


def test_a_fill_that_raced_another_process_write_is_not_kept(tmp_path):
    """Read from the database before the command committed, stored after: dropped, read again."""
    generation = tmp_path / "gateway.generation"
    server, command = EmbeddedGatewayStore(generation), EmbeddedGatewayStore(generation)
    _, parsed = generate_key("test")
    assert _code(server, parsed) == base.MISS  # the request's lookup misses; the database says active
    command.put_record(parsed.lookup_id, _record(parsed, rev="1"))  # meanwhile: revoked and committed
    server.fill_record(parsed.lookup_id, _record(parsed))  # the stale fill
    assert _code(server, parsed) == base.MISS  # not kept: the next lookup reads the database again


def test_suspending_a_tenant_elsewhere_is_seen_on_the_next_request(tmp_path):
    generation = tmp_path / "gateway.generation"
    server, command = EmbeddedGatewayStore(generation), EmbeddedGatewayStore(generation)
    _, parsed = generate_key("test")
    _served(server, parsed)
    command.put_tenant("t1", _tenant("suspended"))
    assert _code(server, parsed) == base.MISS
    server.fill_record(parsed.lookup_id, _record(parsed))
    assert _code(server, parsed) == base.TENANT_MISS
    server.fill_tenant("t1", _tenant("suspended"))
    assert _code(server, parsed) == base.SUSPENDED
