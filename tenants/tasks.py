from celery import shared_task

from . import deployments, verification
from .models import Deployment, Hostname


@shared_task
def deployment_run_task(deployment_id: str) -> str:
    """Run a deployment; idempotent: one that another worker holds, or that finished, is left alone.
    A worker killed mid-run leaves it to `deployments_sweep_task` (its lease runs out)."""
    deployment = deployments.deployment_execute(deployment=Deployment(pk=deployment_id))
    return deployment.status


@shared_task
def deployments_sweep_task() -> dict:
    """Beat: retry or fail deployments whose worker stopped; queue pending ones whose task was lost."""
    return deployments.deployments_sweep()


@shared_task
def hostname_verify_task(hostname_id: int) -> str:
    """Check one hostname's DNS challenge now; idempotent (the outcome is recorded, whoever asks)."""
    hostname = Hostname.objects.filter(pk=hostname_id).first()
    if hostname is None:
        return "gone"
    checked = verification.hostname_verify(hostname=hostname)
    return checked.status if checked is not None else "gone"


@shared_task
def hostnames_verify_due_task() -> int:
    """Beat: queue the hostname checks that are due (pending ones backing off, verified ones' re-checks)."""
    return verification.hostname_checks_enqueue()
