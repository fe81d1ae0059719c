"""Static checks of deploy/k8s and the Dockerfile (these machines have no Docker engine or cluster)."""

import importlib
import re

import kubernetes_validate
import pytest
import yaml

from platform_site.celery import QUEUES
from tests.conftest import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
OPERATOR_API_GROUPS = ("postgresql.cnpg.io/",)  # CRDs: their schemas come with the operator


def _documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization_resources(directory):
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    resources = []
    for entry in kustomization["resources"]:
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(_kustomization_resources(target))
        else:
            assert target.exists(), f"{directory}/kustomization.yaml names missing {entry}"
            resources.extend(_documents(target))
    return resources


@pytest.fixture(scope="module")
def base():
    return _kustomization_resources(K8S / "base")


@pytest.fixture(scope="module")
def production():
    return _kustomization_resources(K8S / "overlays" / "production")


def test_manifests_pass_the_kubernetes_schema(production):
    checked = 0
    for resource in production:
        if resource["apiVersion"].startswith(OPERATOR_API_GROUPS):
            assert resource["kind"] in {"Cluster", "ScheduledBackup"}
            continue
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 12


def test_a_broken_manifest_is_caught():
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _by_kind(resources, kind):
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def test_web_probes_and_beat_singleton(base):
    deployments = _by_kind(base, "Deployment")
    web = deployments["platform-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    beat = deployments["platform-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    assert "platform-migrate" in _by_kind(base, "Job")


def test_one_worker_per_queue(base):
    queues = set()
    for deployment in _by_kind(base, "Deployment").values():
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        if "worker" in command:
            queues.update(command[command.index("-Q") + 1].split(","))
    assert queues == set(QUEUES)


def test_autoscalers_and_budgets_target_real_deployments(base):
    deployments = _by_kind(base, "Deployment")
    hpas = _by_kind(base, "HorizontalPodAutoscaler")
    assert set(hpas) == {"platform-web", "platform-worker-webhooks"}
    for hpa in hpas.values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for pdb in _by_kind(base, "PodDisruptionBudget").values():
        labels = pdb["spec"]["selector"]["matchLabels"]
        assert any(d["spec"]["template"]["metadata"]["labels"] == labels for d in deployments.values())


def test_commands_name_modules_that_exist(base):
    for deployment in _by_kind(base, "Deployment").values():
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        if command[0] == "gunicorn":
            module, attribute = command[1].split(":")
            assert hasattr(importlib.import_module(module), attribute)
        elif command[0] == "celery":
            assert command[1:3] == ["-A", "platform_site"]
            assert importlib.import_module("platform_site.celery").app


def test_required_real_mode_variables_are_provided(base):
    config = _by_kind(base, "ConfigMap")["platform-config"]["data"]
    secret = _by_kind(base, "Secret")["platform-secrets"]["stringData"]
    for variable in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY"):
        assert variable in secret
    for variable in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL", "CELERY_BROKER_URL", "S3_BUCKET"):
        assert variable in config
    assert not set(config) & set(secret)
    example = (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    assert set(re.findall(r"^(\w+)=", example, re.M)) == set(secret)


def test_dockerfile_is_multi_stage_non_root_and_copies_what_exists():
    dockerfile = (REPO_ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    for source in re.findall(r"^COPY (?:--chown=\S+ )?(?!--from)(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (REPO_ROOT / path).exists(), path
    assert "collectstatic" in dockerfile and "gunicorn" in dockerfile


def test_both_images_hold_every_app_of_the_project():
    """Each image (the app's and the database host's, which runs the backups worker) copies every project
    app that INSTALLED_APPS names: one missing fails at Django's setup, first of all in collectstatic."""
    from django.conf import settings

    dockerfile = (REPO_ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    apps = {app for app in settings.INSTALLED_APPS if (REPO_ROOT / app).is_dir()}
    for stage in re.split(r"^FROM ", dockerfile, flags=re.M)[1:]:
        copied = set(re.findall(r"^COPY (?:--chown=\S+ )?(\w+) \1$", stage, re.M))
        if copied:
            assert apps <= copied, (stage.splitlines()[0], sorted(apps - copied))


def test_production_patches_reach_every_database_client(base):
    """The overlay's patches target resources of the base by name pattern and container name; each
    Deployment and Job that talks to PostgreSQL gets PGPASSWORD from CloudNativePG's app secret."""
    overlay = yaml.safe_load((K8S / "overlays" / "production" / "kustomization.yaml").read_text())
    cluster = _by_kind(_documents(K8S / "overlays" / "production" / "postgres-cluster.yaml"), "Cluster")
    (cluster_name,) = cluster
    workloads = {**_by_kind(base, "Deployment"), **_by_kind(base, "Job")}
    patched = set()
    for entry in overlay["patches"]:
        patch = yaml.safe_load(entry["patch"])
        matched = [
            name
            for name, resource in workloads.items()
            if resource["kind"] == entry["target"]["kind"] and re.fullmatch(entry["target"]["name"], name)
        ]
        assert matched, f"patch target {entry['target']} matches nothing in the base"
        if not isinstance(patch, dict):
            continue  # a JSON6902 list of operations
        for container in patch["spec"]["template"]["spec"]["containers"]:
            for name in matched:
                names = [c["name"] for c in workloads[name]["spec"]["template"]["spec"]["containers"]]
                assert container["name"] in names, f"{name} has no container {container['name']}"
            password = {e["name"]: e for e in container.get("env", [])}.get("PGPASSWORD")
            if password:
                assert password["valueFrom"]["secretKeyRef"] == {"name": f"{cluster_name}-app", "key": "password"}
                patched.update(matched)
    assert patched == set(workloads)
