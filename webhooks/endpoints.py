"""Endpoints: registration (URL and subscriptions checked), signing secrets, disabling, the breaker's reset."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from observability import metrics
from tenants.models import Tenant

from . import catalogue, encryption, signing
from .models import Endpoint, Event, SignatureScheme
from .outbox import event_record
from .ssrf import BlockedDestination, destination_check

logger = logging.getLogger(__name__)


def _invalid(field: str, message: str, *, code: str = "invalid", status_code: int = 400) -> ApplicationError:
    return ApplicationError(code, "The request is invalid." if code == "invalid" else message,
                            fields={field: [message]}, status_code=status_code)  # fmt: skip


def _check_url(url: str) -> None:
    try:
        destination_check(url)
    except BlockedDestination as exc:
        raise _invalid("url", str(exc)) from exc


def _check_event_types(event_types: list[str]) -> None:
    if not event_types:
        raise _invalid("event_types", 'Subscribe to at least one event type (or "*").')
    unknown = catalogue.invalid_patterns(event_types)
    if unknown:
        raise _invalid("event_types", f"Unknown event types: {', '.join(unknown)}.")


def _check_signature_scheme(scheme: str) -> None:
    if scheme not in SignatureScheme.values:
        raise _invalid("signature_scheme", f"Choose one of: {', '.join(SignatureScheme.values)}.")


def _signing_key_new(scheme: str) -> tuple[str, str, str | None]:
    """A new signing key: (its encrypted form, its whpk_ public key or "", what to show once: the whsec_
    secret of v1, None for v1a, whose private key never leaves the platform)."""
    key = signing.key_generate(scheme)
    if scheme == SignatureScheme.V1A:
        return encryption.encrypt(key), signing.public_key(key), None
    return encryption.encrypt(key), "", key


@transaction.atomic
def endpoint_create(
    *, tenant, url: str, event_types: list[str], description: str = "", signature_scheme: str = SignatureScheme.V1
) -> tuple[Endpoint, str | None]:
    """Create an endpoint; returns it and its v1 signing secret, which is shown this once (None for v1a:
    the endpoint's public key verifies its signatures)."""
    _check_url(url)
    _check_event_types(event_types)
    _check_signature_scheme(signature_scheme)
    # Serialise creations per tenant so the limit holds under concurrency.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if Endpoint.objects.filter(tenant=tenant).count() >= settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT:
        raise ApplicationError(
            "limit_reached",
            f"A tenant may have at most {settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT} webhook endpoints.",
            status_code=409,
        )
    key_encrypted, public_key, secret = _signing_key_new(signature_scheme)
    endpoint = Endpoint.objects.create(
        tenant=tenant,
        url=url,
        event_types=list(dict.fromkeys(event_types)),
        description=description,
        secret_encrypted=key_encrypted,
        signature_scheme=signature_scheme,
        public_key=public_key,
    )
    logger.info("webhook endpoint created id=%s tenant=%s scheme=%s", endpoint.pk, tenant.pk, signature_scheme)
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *,
    endpoint: Endpoint,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Endpoint:
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    if url is not None:
        _check_url(url)
        endpoint.url = url
    if event_types is not None:
        _check_event_types(event_types)
        endpoint.event_types = list(dict.fromkeys(event_types))
    if description is not None:
        endpoint.description = description
    endpoint.save()
    if is_active is True and not endpoint.is_active:
        endpoint = endpoint_enable(endpoint=endpoint)
    elif is_active is False and endpoint.is_active:
        endpoint = endpoint_disable(endpoint=endpoint, reason="disabled by the tenant", notify=False)
    logger.info("webhook endpoint updated id=%s", endpoint.pk)
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint_id = endpoint.pk
    endpoint.delete()
    logger.info("webhook endpoint deleted id=%s", endpoint_id)


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: Endpoint, grace_seconds: int | None = None, signature_scheme: str | None = None
) -> str | None:
    """A new signing key signs from now on (of the scheme given, or the endpoint's); the old one also signs
    until the grace period ends. Returns the new v1 secret (shown this once), None for a v1a key."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    scheme = endpoint.signature_scheme if signature_scheme is None else signature_scheme
    _check_signature_scheme(scheme)
    grace = settings.WEBHOOKS_ROTATION_GRACE_SECONDS if grace_seconds is None else grace_seconds
    key_encrypted, public_key, secret = _signing_key_new(scheme)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if grace > 0 else ""
    endpoint.previous_public_key = endpoint.public_key if grace > 0 else ""
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(seconds=grace) if grace > 0 else None
    endpoint.secret_encrypted, endpoint.public_key, endpoint.signature_scheme = key_encrypted, public_key, scheme
    endpoint.save()
    logger.info("webhook endpoint secret rotated id=%s grace=%ss scheme=%s", endpoint.pk, grace, scheme)
    return secret


def endpoint_signing_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
    secrets_ = [encryption.decrypt(endpoint.secret_encrypted)]
    now = now or timezone.now()
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets_.append(encryption.decrypt(endpoint.previous_secret_encrypted))
    return secrets_


@transaction.atomic
def endpoint_disable(*, endpoint: Endpoint, reason: str, notify: bool = True) -> Endpoint:
    """Disable an endpoint once; with notify, emit webhook.endpoint.disabled to the tenant's other endpoints."""
    now = timezone.now()
    changed = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_reason=reason[:200], disabled_at=now, updated_at=now
    )
    endpoint = Endpoint.objects.get(pk=endpoint.pk)
    if changed:
        logger.warning("webhook endpoint disabled id=%s reason=%s", endpoint.pk, reason)
        if notify:
            event_record(
                tenant=endpoint.tenant,
                type="webhook.endpoint.disabled",
                data={"endpoint": {"id": str(endpoint.pk), "url": endpoint.url, "reason": reason}},
            )
    return endpoint


@transaction.atomic
def endpoint_enable(*, endpoint: Endpoint) -> Endpoint:
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        is_active=True, disabled_reason="", disabled_at=None, failing_since=None, updated_at=now, **_BREAKER_CLOSED
    )
    return Endpoint.objects.get(pk=endpoint.pk)


_BREAKER_CLOSED = {
    "consecutive_failures": 0, "lane": Endpoint.Lane.FAST, "breaker_state": Endpoint.BreakerState.CLOSED,
    "breaker_opened_at": None, "breaker_probe_at": None,
}  # fmt: skip


@transaction.atomic
def endpoint_breaker_reset(*, endpoint: Endpoint) -> Endpoint:
    """Close the endpoint's breaker and put it back in the fast lane (an operator knows the receiver is back);
    its waiting deliveries go out at once."""
    from .delivery import pump_wake

    changed = (
        Endpoint.objects.filter(pk=endpoint.pk)
        .exclude(breaker_state=Endpoint.BreakerState.CLOSED, lane=Endpoint.Lane.FAST)
        .update(updated_at=timezone.now(), **_BREAKER_CLOSED)
    )
    if changed:
        metrics.record_webhook_breaker(transition="reset")
        logger.info("webhook endpoint breaker reset id=%s", endpoint.pk)
        transaction.on_commit(pump_wake)
    return Endpoint.objects.get(pk=endpoint.pk)


def endpoint_ping(*, endpoint: Endpoint) -> Event:
    """Send a `ping` event to this endpoint only (even if it subscribes to nothing matching)."""
    return event_record(
        tenant=endpoint.tenant, type="ping", data={"message": "ping", "endpoint": str(endpoint.pk)},
        target_endpoint=endpoint,
    )  # fmt: skip
