from celery import shared_task

from . import verification
from .models import Deployment, Hostname
from .services import deployment_execute


@shared_task(bind=True, max_retries=3, default_retry_delay=5)
def deployment_run(self, deployment_id: str) -> str:
    """Run a pending deployment; idempotent: a deployment no longer pending is left alone."""
    deployment = Deployment.objects.filter(pk=deployment_id, status=Deployment.Status.PENDING).first()
    if deployment is None:
        return "skipped"
    return deployment_execute(deployment=deployment).status


@shared_task
def hostname_verify(hostname_id: int) -> str:
    """Check one hostname's DNS challenge now; idempotent (the outcome is recorded, whoever asks)."""
    hostname = Hostname.objects.filter(pk=hostname_id).first()
    if hostname is None:
        return "gone"
    checked = verification.hostname_verify(hostname=hostname)
    return checked.status if checked is not None else "gone"


@shared_task
def hostnames_verify_due() -> int:
    """Beat: queue the hostname checks that are due (pending ones backing off, verified ones' re-checks)."""
    return verification.hostname_checks_enqueue()
