"""Hostname verification: a custom hostname is served only while its owner proves control of its DNS.

Life of a hostname (tenants.models.Hostname):

* added: `pending`, with its own token. The tenant publishes `_platform-challenge.<hostname> TXT <token>`.
* pending: checked by `tenants.tasks.hostname_verify_task` (queued by the beat task `hostnames_verify_due_task`)
  after HOSTNAME_VERIFY_BACKOFF_SECONDS, then backing off (doubling, at most
  HOSTNAME_VERIFY_BACKOFF_MAX_SECONDS apart). Found: `verified`, served from the next request on.
  Not found for HOSTNAME_VERIFY_GIVE_UP_HOURS: `failed`, no more automatic checks.
* a re-check asked for (API `POST /websites/{id}/hostnames/{hostname}/verify/`, the admin action) looks
  the record up at once and, if it is still missing, starts a new round of automatic checks.
* verified: re-checked every HOSTNAME_RECHECK_HOURS. A record found missing starts a grace period
  (HOSTNAME_VERIFY_GRACE_HOURS, checked hourly meanwhile, `hostname.record_missing` sent once); still
  missing at its end, the hostname lapses to `pending` (a new round), stops being served and the CDN's
  copies under it are purged. A resolver failure never counts as missing.

The token is compared with the TXT values exactly; each hostname row has its own, so a record published
for one website never verifies another website's claim to the same name.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.enqueue import enqueue_many

from .dns_challenge import ChallengeResult, Outcome, challenge_lookup
from .models import Hostname

logger = logging.getLogger(__name__)

# A check queued by the beat is due again after this long if its task never reported (broker lost it).
CHECK_LEASE = timedelta(minutes=10)
# While a verified hostname's record is missing, it is looked at this often until the grace ends.
GRACE_CHECK_INTERVAL = timedelta(hours=1)


def hostname_data(hostname: Hostname) -> dict:
    """The webhook payload (`hostname.*` events) and the API's view of a hostname's verification."""
    return {
        "hostname": {
            "hostname": hostname.hostname, "website_id": str(hostname.website_id), "status": hostname.status,
            "verified_at": hostname.verified_at, "error": hostname.last_error,
            "record": {"type": "TXT", "name": hostname.challenge_name, "value": hostname.verification_token},
        }
    }  # fmt: skip


def _event(hostname: Hostname, type_: str) -> None:
    from webhooks.services import event_record

    from .models import Tenant

    tenant_id = hostname.website.tenant_id
    event_record(tenant=Tenant(pk=tenant_id), type=type_, data=hostname_data(hostname))


def _backoff(failures: int) -> timedelta:
    base = settings.HOSTNAME_VERIFY_BACKOFF_SECONDS
    seconds = min(base * 2 ** max(failures - 1, 0), settings.HOSTNAME_VERIFY_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=seconds)


def hostnames_cache_purge(*, website, hostnames: list[str], reason: str) -> None:
    """Purge the CDN's copies of a website served under hostnames it no longer answers to; in the caller's
    transaction. A misconfigured CDN is logged, never a reason to keep serving."""
    if not hostnames:
        return
    from cdn.services import invalidation_request
    from core.exceptions import ApplicationError

    try:
        invalidation_request(website=website, paths=["/*"], hostnames=hostnames, reason=reason)
    except ApplicationError as exc:
        logger.warning("website %s: CDN purge of %s not requested: %s", website.pk, hostnames, exc.message)


def hostname_verify(*, hostname: Hostname, requested: bool = False) -> Hostname:
    """Look the hostname's challenge up in DNS now and record what was found: serving starts or stops
    accordingly. `requested`: asked for by the tenant or an operator (a failed hostname starts a new round
    of automatic checks). Returns the hostname as stored afterwards (None if it was removed meanwhile)."""
    # The lookup takes up to HOSTNAME_DNS_TIMEOUT: outside any transaction, so no row stays locked.
    result = challenge_lookup(hostname.hostname, hostname.verification_token)
    with transaction.atomic():
        row = Hostname.objects.select_for_update().select_related("website").filter(pk=hostname.pk).first()
        if row is None or row.verification_token != hostname.verification_token:
            return row
        now = timezone.now()
        row.checked_at = now
        if result.outcome is Outcome.FOUND:
            _found(row, now)
        elif row.status == Hostname.Status.VERIFIED:
            _verified_not_found(row, result, now)
        else:
            _pending_not_found(row, result, now, requested=requested)
    logger.info("hostname %s checked: %s (%s)", row.hostname, result.outcome.value, row.status)
    return row


def _found(row: Hostname, now) -> None:
    row.check_failures, row.record_missing_since, row.last_error = 0, None, ""
    row.next_check_at = now + timedelta(hours=settings.HOSTNAME_RECHECK_HOURS)
    if row.status == Hostname.Status.VERIFIED:
        row.save()
        return
    held_elsewhere = (
        Hostname.objects.filter(hostname=row.hostname, status=Hostname.Status.VERIFIED).exclude(pk=row.pk).exists()
    )
    if not held_elsewhere:
        row.status, row.verified_at = Hostname.Status.VERIFIED, now
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:  # another website's claim verified at the same moment
            held_elsewhere = True
    if held_elsewhere:
        row.status, row.verified_at, row.next_check_at = Hostname.Status.FAILED, None, None
        row.last_error = "The record is in place, but this hostname is already in use on the platform."
        row.save()
        return
    _event(row, "hostname.verified")


def _verified_not_found(row: Hostname, result: ChallengeResult, now) -> None:
    row.last_error = result.detail[:500]
    if result.outcome is Outcome.UNKNOWN:
        # Our resolver or theirs failing says nothing about who controls the name: keep serving, ask again.
        row.check_failures += 1
        row.next_check_at = now + _backoff(row.check_failures)
        row.save()
        return
    grace = timedelta(hours=settings.HOSTNAME_VERIFY_GRACE_HOURS)
    if row.record_missing_since is None:
        row.record_missing_since = now
        _event(row, "hostname.record_missing")
    lapses_at = row.record_missing_since + grace
    if now < lapses_at:
        row.next_check_at = min(now + GRACE_CHECK_INTERVAL, lapses_at)
        row.save()
        return
    row.status, row.verified_at, row.record_missing_since = Hostname.Status.PENDING, None, None
    row.verification_started_at, row.check_failures = now, 1
    row.next_check_at = now + _backoff(1)
    row.save()
    _event(row, "hostname.unverified")
    hostnames_cache_purge(website=row.website, hostnames=[row.hostname], reason=f"{row.hostname} no longer verified")
    logger.warning("hostname %s of website %s lapsed: its challenge record is gone", row.hostname, row.website_id)


def _pending_not_found(row: Hostname, result: ChallengeResult, now, *, requested: bool) -> None:
    row.last_error = result.detail[:500]
    if requested:
        row.status, row.verification_started_at, row.check_failures = Hostname.Status.PENDING, now, 0
    row.check_failures += 1
    give_up_at = row.verification_started_at + timedelta(hours=settings.HOSTNAME_VERIFY_GIVE_UP_HOURS)
    if row.status == Hostname.Status.PENDING and now >= give_up_at:
        row.status, row.next_check_at = Hostname.Status.FAILED, None
        row.save()
        _event(row, "hostname.verification_failed")
        return
    if row.status == Hostname.Status.PENDING:
        row.next_check_at = min(now + _backoff(row.check_failures), give_up_at)
    row.save()


def hostname_checks_enqueue(*, limit: int = 500) -> int:
    """Queue the checks that are due (the beat task); each is claimed for CHECK_LEASE, so a check whose
    task the broker lost is queued again after it."""
    from .tasks import hostname_verify_task

    now = timezone.now()
    with transaction.atomic():
        due = list(
            Hostname.objects.select_for_update(skip_locked=True)
            .filter(next_check_at__lte=now)
            .order_by("next_check_at")
            .values_list("pk", flat=True)[:limit]
        )
        Hostname.objects.filter(pk__in=due).update(next_check_at=now + CHECK_LEASE)
    # A broker error stops the loop; the claims expire and the next beat queues those checks again.
    return enqueue_many(hostname_verify_task, [(pk,) for pk in due])
