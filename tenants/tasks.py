from celery import shared_task

from . import services
from .models import Deployment


@shared_task
def deployment_run(deployment_id: str) -> str:
    """Run a deployment; idempotent: one that another worker holds, or that finished, is left alone.
    A worker killed mid-run leaves it to `deployments_sweep` (its lease runs out)."""
    deployment = services.deployment_execute(deployment=Deployment(pk=deployment_id))
    return deployment.status


@shared_task
def deployments_sweep() -> dict:
    """Beat: retry or fail deployments whose worker stopped; queue pending ones whose task was lost."""
    return services.deployments_sweep()
