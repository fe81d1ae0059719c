"""Standard Webhooks `v1a` (ed25519) signatures beside `v1` (HMAC), chosen per endpoint.

Every signature is verified by an implementation that is not the platform's: PyNaCl (libsodium) for
v1a, the `standardwebhooks` package for v1. Deliveries go to real HTTP receivers on 127.0.0.1.
"""

import base64
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import nacl.exceptions
import nacl.signing
import pytest
from django.db import connection
from standardwebhooks import Webhook

from tenants import services as tenant_services
from webhooks import encryption, services, signing
from webhooks.models import Attempt, Endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhooks/endpoints/"
KEYS = "/api/v1/webhooks/keys/"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_key(public_key: str) -> nacl.signing.VerifyKey:
    assert public_key.startswith("whpk_")
    return nacl.signing.VerifyKey(base64.b64decode(public_key.removeprefix("whpk_")))


def v1a_verify(public_key: str, request) -> bytes:
    """A receiver's check with PyNaCl: some `v1a,` signature of `{id}.{timestamp}.{body}` verifies with the
    key, and the timestamp is recent; raises BadSignatureError otherwise. Returns the body."""
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    assert abs(time.time() - int(request.headers["webhook-timestamp"])) < 300
    key = _verify_key(public_key)
    for entry in request.headers["webhook-signature"].split(" "):
        version, _, sig = entry.partition(",")
        if version != "v1a":
            continue
        try:
            return key.verify(signed, base64.b64decode(sig))
        except nacl.exceptions.BadSignatureError:
            continue
    raise nacl.exceptions.BadSignatureError("no v1a signature verifies with this key")


class Tampered:
    def __init__(self, request, **changes):
        self.headers = {**request.headers, **changes.get("headers", {})}
        self.body = changes.get("body", request.body)


def _create(client, tenant, url, **extra):
    body = {"tenant": str(tenant.pk), "url": url, "event_types": ["*"], **extra}
    return client.post(ENDPOINTS, body, format="json")


def _deliver(tenant):
    """One event, fanned out and attempted in this process (real HTTP to the receiver)."""
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"id": str(tenant.pk)}})
    for delivery_id in services.event_fan_out(event_id=event.pk):
        services.delivery_attempt(delivery_id=delivery_id)
    return Attempt.objects.filter(delivery__event=event)


# --- keys ------------------------------------------------------------------------------------------


def test_keys_have_the_specifications_form_and_pynacl_derives_the_same_public_key():
    private = signing.key_generate("v1a")
    assert private.startswith("whsk_") and len(base64.b64decode(private.removeprefix("whsk_"))) == 32
    public = signing.public_key(private)
    seed = base64.b64decode(private.removeprefix("whsk_"))
    assert _verify_key(public).encode() == nacl.signing.SigningKey(seed).verify_key.encode()
    assert signing.key_generate("v1").startswith("whsec_")
    with pytest.raises(ValueError, match="v2"):
        signing.key_generate("v2")


def test_the_jwk_matches_rfc_8037s_example_and_its_thumbprint():
    # RFC 8037, appendix A.1 (the key) and A.3 (its RFC 7638 thumbprint).
    seed = _b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    private = "whsk_" + base64.b64encode(seed).decode()
    jwk = signing.jwk(signing.public_key(private))
    assert jwk == {
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA",
    }  # fmt: skip


def test_a_v1a_signature_verifies_with_pynacl_and_nothing_tampered_does():
    private = signing.key_generate("v1a")
    body = b'{"type":"tenant.suspended"}'
    headers = signing.headers(secrets_=[private], msg_id="msg_1", timestamp=int(time.time()), body=body)
    version, _, sig = headers["webhook-signature"].partition(",")
    assert version == "v1a" and len(base64.b64decode(sig)) == 64

    class Request:
        pass

    request = Request()
    request.headers, request.body = headers, body
    assert v1a_verify(signing.public_key(private), request) == f"msg_1.{headers['webhook-timestamp']}.".encode() + body
    timestamp = str(int(headers["webhook-timestamp"]) + 1)
    for tampered in (
        Tampered(request, body=body.replace(b"suspended", b"reactivated")),
        Tampered(request, headers={"webhook-timestamp": timestamp}),
        Tampered(request, headers={"webhook-id": "msg_2"}),
    ):
        with pytest.raises(nacl.exceptions.BadSignatureError):
            v1a_verify(signing.public_key(private), tampered)
    with pytest.raises(nacl.exceptions.BadSignatureError):  # another endpoint's key
        v1a_verify(signing.public_key(signing.key_generate("v1a")), request)


# --- endpoints, deliveries and rotation ------------------------------------------------------------


def test_a_v1a_endpoint_publishes_its_public_key_and_its_deliveries_verify(staff_client, tenant, receiver):
    response = _create(staff_client, tenant, receiver.url(), signature_scheme="v1a")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["signature_scheme"] == "v1a" and created["secret"] is None
    public = created["public_key"]
    assert staff_client.get(f"{ENDPOINTS}{created['id']}/").json()["public_key"] == public

    (attempt,) = _deliver(tenant)
    assert attempt.succeeded, attempt.error
    (request,) = receiver.received()
    assert request.headers["webhook-signature"].startswith("v1a,") and " " not in request.headers["webhook-signature"]
    assert json.loads(v1a_verify(public, request).split(b".", 2)[2])["type"] == "tenant.suspended"
    with pytest.raises(nacl.exceptions.BadSignatureError):
        v1a_verify(public, Tampered(request, body=request.body.replace(b"suspended", b"SUSPENDED")))


def test_v1_stays_the_default_and_verifies_with_standardwebhooks(staff_client, tenant, receiver):
    created = _create(staff_client, tenant, receiver.url()).json()
    assert created["signature_scheme"] == "v1" and created["public_key"] is None
    assert created["secret"].startswith("whsec_")
    _deliver(tenant)
    (request,) = receiver.received()
    assert request.headers["webhook-signature"].startswith("v1,")
    Webhook(created["secret"]).verify(request.body, request.headers)


def test_rotation_of_a_v1a_key_signs_with_both_keys_during_the_grace_period(staff_client, tenant, receiver):
    created = _create(staff_client, tenant, receiver.url(), signature_scheme="v1a").json()
    old = created["public_key"]
    rotate = f"{ENDPOINTS}{created['id']}/rotate-secret/"
    rotated = staff_client.post(rotate, {"grace_seconds": 3600}, format="json")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["public_key"]
    assert new != old and rotated.json()["previous_public_key"] == old and rotated.json()["secret"] is None

    _deliver(tenant)
    (request,) = receiver.received()
    signatures = request.headers["webhook-signature"].split(" ")
    assert [entry.split(",")[0] for entry in signatures] == ["v1a", "v1a"]
    v1a_verify(old, request)
    v1a_verify(new, request)
    for one in signatures:  # each signature is one key's: neither verifies with the other key
        single = Tampered(request, headers={"webhook-signature": one})
        verified = []
        for key in (old, new):
            try:
                v1a_verify(key, single)
                verified.append(key)
            except nacl.exceptions.BadSignatureError:
                pass
        assert len(verified) == 1

    newest = staff_client.post(rotate, {"grace_seconds": 0}, format="json").json()
    assert newest["previous_public_key"] is None
    _deliver(tenant)
    latest = receiver.received()[1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    v1a_verify(newest["public_key"], latest)
    for retired in (old, new):
        with pytest.raises(nacl.exceptions.BadSignatureError):
            v1a_verify(retired, latest)


def test_rotation_can_move_an_endpoint_from_v1_to_v1a_with_both_signatures_meanwhile(staff_client, tenant, receiver):
    created = _create(staff_client, tenant, receiver.url()).json()
    rotated = staff_client.post(
        f"{ENDPOINTS}{created['id']}/rotate-secret/", {"grace_seconds": 3600, "signature_scheme": "v1a"}, format="json"
    ).json()
    assert rotated["signature_scheme"] == "v1a" and rotated["secret"] is None
    assert rotated["previous_public_key"] is None  # the previous key is a v1 secret: nothing to publish
    _deliver(tenant)
    (request,) = receiver.received()
    assert [entry.split(",")[0] for entry in request.headers["webhook-signature"].split(" ")] == ["v1a", "v1"]
    v1a_verify(rotated["public_key"], request)
    Webhook(created["secret"]).verify(request.body, request.headers)  # the receiver's old check keeps passing


def test_moving_back_to_v1_keeps_the_old_v1a_key_listed_and_signing_during_the_grace_period(
    staff_client, tenant, receiver
):
    created = _create(staff_client, tenant, receiver.url(), signature_scheme="v1a").json()
    rotated = staff_client.post(
        f"{ENDPOINTS}{created['id']}/rotate-secret/", {"grace_seconds": 3600, "signature_scheme": "v1"}, format="json"
    ).json()
    assert rotated["signature_scheme"] == "v1" and rotated["secret"].startswith("whsec_")
    assert rotated["public_key"] is None and rotated["previous_public_key"] == created["public_key"]
    listed = staff_client.get(KEYS).json()["keys"]
    assert [(key["public_key"], key["status"]) for key in listed] == [(created["public_key"], "previous")]
    _deliver(tenant)
    (request,) = receiver.received()
    assert [entry.split(",")[0] for entry in request.headers["webhook-signature"].split(" ")] == ["v1", "v1a"]
    Webhook(rotated["secret"]).verify(request.body, request.headers)
    v1a_verify(created["public_key"], request)


def test_bad_schemes_get_a_400_naming_the_field(staff_client, tenant, receiver):
    for value in ("v2", "", None, ["v1a"], "V1A"):
        response = _create(staff_client, tenant, receiver.url(), signature_scheme=value)
        assert response.status_code == 400, (value, response.content)
        assert list(response.json()["error"]["fields"]) == ["signature_scheme"], response.content
    assert not Endpoint.objects.exists()
    endpoint, _ = services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["*"])
    refused = staff_client.post(f"{ENDPOINTS}{endpoint.pk}/rotate-secret/", {"signature_scheme": "rsa"}, format="json")
    assert refused.status_code == 400 and "signature_scheme" in refused.json()["error"]["fields"]
    # The rule is the service's, whoever calls it.
    with pytest.raises(Exception) as raised:
        services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["*"], signature_scheme="v9")
    assert raised.value.fields == {"signature_scheme": ["Choose one of: v1, v1a."]}


def test_the_key_listing_is_a_jwk_set_of_the_keys_that_sign_now(staff_client, tenant, receiver):
    v1a = _create(staff_client, tenant, receiver.url(), signature_scheme="v1a").json()
    _create(staff_client, tenant, receiver.url("/v1"))  # a v1 endpoint has nothing to publish
    listed = staff_client.get(KEYS).json()["keys"]
    assert [(key["endpoint"], key["status"]) for key in listed] == [(v1a["id"], "current")]
    (key,) = listed
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA" and key["use"] == "sig"
    assert (
        _b64url_decode(key["x"]) == _verify_key(v1a["public_key"]).encode() and key["public_key"] == v1a["public_key"]
    )

    rotated = staff_client.post(f"{ENDPOINTS}{v1a['id']}/rotate-secret/", {"grace_seconds": 60}, format="json").json()
    listed = staff_client.get(f"{KEYS}?endpoint={v1a['id']}").json()["keys"]
    assert [(k["public_key"], k["status"]) for k in listed] == [
        (rotated["public_key"], "current"), (v1a["public_key"], "previous"),
    ]  # fmt: skip
    assert listed[1]["expires_at"] and listed[0]["expires_at"] is None and listed[0]["kid"] != listed[1]["kid"]
    # The delivery verifies with a key taken from the listing (x, as a JWK consumer reads it).
    _deliver(tenant)
    (request,) = receiver.received("/hook")
    for jwk in listed:
        v1a_verify("whpk_" + base64.b64encode(_b64url_decode(jwk["x"])).decode(), request)

    bad = staff_client.get(f"{KEYS}?endpoint=not-a-uuid")
    assert bad.status_code == 400 and "endpoint" in bad.json()["error"]["fields"]


def test_a_tenants_key_lists_only_its_own_endpoints_keys(tenant, receiver):
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services

    other = tenant_services.tenant_create(name="Other", slug="other-keys")
    theirs, _ = services.endpoint_create(tenant=other, url=receiver.url(), event_types=["*"], signature_scheme="v1a")
    mine, _ = services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["*"], signature_scheme="v1a")
    _, raw = apikey_services.apikey_create(tenant=tenant, name="hooks", scopes=["webhooks:manage"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [key["endpoint"] for key in client.get(KEYS).json()["keys"]] == [str(mine.pk)]
    assert client.get(f"{KEYS}?endpoint={theirs.pk}").json() == {"keys": []}
    _, reader = apikey_services.apikey_create(tenant=tenant, name="reader", scopes=["websites:read"])
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {reader}").get(KEYS).status_code == 403


def test_the_private_key_is_never_in_a_response_a_log_or_the_database_in_clear(staff_client, tenant, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    responses = []
    created = _create(staff_client, tenant, receiver.url(), signature_scheme="v1a")
    responses.append(created)
    endpoint_url = f"{ENDPOINTS}{created.json()['id']}/"
    responses.append(staff_client.post(f"{endpoint_url}rotate-secret/", {"grace_seconds": 60}, format="json"))
    _deliver(tenant)
    responses += [staff_client.get(url) for url in (endpoint_url, ENDPOINTS, KEYS, f"{endpoint_url}deliveries/")]
    endpoint = Endpoint.objects.get(pk=created.json()["id"])
    private_keys = [
        encryption.decrypt(endpoint.secret_encrypted),
        encryption.decrypt(endpoint.previous_secret_encrypted),
    ]
    assert all(key.startswith("whsk_") for key in private_keys)  # encrypted at rest, and these are the keys
    assert [signing.public_key(key) for key in private_keys] == [endpoint.public_key, endpoint.previous_public_key]

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Endpoint._meta.db_table}")  # noqa: S608 (a model's table name)
        stored = json.dumps(cursor.fetchall(), default=str)
    texts = {"responses": b"".join(r.content for r in responses).decode(), "logs": caplog.text, "database": stored}
    for key in private_keys:
        raw = base64.b64decode(key.removeprefix("whsk_"))
        forms = [key, key.removeprefix("whsk_"), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()]
        for where, text in texts.items():
            assert not any(form in text for form in forms), f"a private key in the {where}"
    assert "whsk_" not in texts["responses"] and endpoint.public_key in texts["responses"]


def test_the_admin_shows_the_scheme_and_public_key_read_only(client, django_user_model, tenant, receiver):
    endpoint, _ = services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["*"], signature_scheme="v1a")
    client.force_login(django_user_model.objects.create_superuser(username="keys-op", password="pw-long-enough-1"))
    page = client.get(f"/admin/webhooks/endpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert endpoint.public_key in content and "v1a: ed25519" in content
    assert 'name="public_key"' not in content and 'name="signature_scheme"' not in content  # shown, not editable
    assert "whsk_" not in content and encryption.decrypt(endpoint.secret_encrypted) not in content


# --- the verification examples of docs/webhooks.md, run against a real delivery ---------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _documented(marker: str) -> str:
    """The code block that follows `<!-- {marker}` in docs/webhooks.md."""
    match = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\s*```\w+\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, f"no {marker} example in {DOCS}"
    return match.group(1)


@pytest.fixture
def rotated_delivery(tenant, receiver):
    """A real delivery signed by two v1a keys (a rotation's grace period), and the tampered copies of it."""
    endpoint, _ = services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["*"], signature_scheme="v1a")
    services.endpoint_rotate_secret(endpoint=endpoint, grace_seconds=60)
    endpoint.refresh_from_db()
    _deliver(tenant)
    (request,) = receiver.received()
    headers = {name.lower(): value for name, value in request.headers.items()}
    stale = str(int(headers["webhook-timestamp"]) - 3600)
    cases = {
        "as sent": (request.body, headers),
        "body changed": (request.body.replace(b"suspended", b"reactivated"), headers),
        "timestamp changed": (
            request.body,
            {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)},
        ),
        "replayed an hour later": (request.body, {**headers, "webhook-timestamp": stale}),
        "id changed": (request.body, {**headers, "webhook-id": "msg_other"}),
    }
    return [endpoint.previous_public_key, endpoint.public_key], cases


EXPECTED = {"as sent": True, "body changed": False, "timestamp changed": False, "replayed an hour later": False,
            "id changed": False}  # fmt: skip


def test_the_documented_python_check_accepts_real_deliveries_and_refuses_tampered_ones(rotated_delivery):
    keys, cases = rotated_delivery
    namespace: dict = {}
    exec(compile(_documented("verify-v1a-python"), str(DOCS), "exec"), namespace)  # noqa: S102 (our own docs)
    verify = namespace["verify_webhook"]
    assert {name: verify(body, headers, keys) for name, (body, headers) in cases.items()} == EXPECTED
    for key in keys:  # either key alone verifies (the header carries both signatures)
        assert verify(*cases["as sent"], [key])
    assert not verify(*cases["as sent"], [signing.public_key(signing.key_generate("v1a"))])


def test_the_documented_node_check_accepts_real_deliveries_and_refuses_tampered_ones(rotated_delivery, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the documented Node.js example is not run")
    keys, cases = rotated_delivery
    script = tmp_path / "verify.js"
    script.write_text(
        _documented("verify-v1a-node")
        + """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const results = {};
for (const [name, [body, headers, keys]] of Object.entries(input)) {
  results[name] = verifyWebhook(Buffer.from(body, "base64"), headers, keys);
}
process.stdout.write(JSON.stringify(results));
"""
    )
    stranger = [signing.public_key(signing.key_generate("v1a"))]
    payload = {name: [base64.b64encode(body).decode(), headers, keys] for name, (body, headers) in cases.items()}
    payload["old key only"] = [*payload["as sent"][:2], keys[:1]]
    payload["a stranger's key"] = [*payload["as sent"][:2], stranger]
    done = subprocess.run([node, str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {**EXPECTED, "old key only": True, "a stranger's key": False}
