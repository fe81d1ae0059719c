from celery import shared_task

from .models import Deployment
from .services import deployment_execute


@shared_task(bind=True, max_retries=3, default_retry_delay=5)
def deployment_run(self, deployment_id: str) -> str:
    """Run a pending deployment; idempotent: a deployment no longer pending is left alone."""
    deployment = Deployment.objects.filter(pk=deployment_id, status=Deployment.Status.PENDING).first()
    if deployment is None:
        return "skipped"
    return deployment_execute(deployment=deployment).status
