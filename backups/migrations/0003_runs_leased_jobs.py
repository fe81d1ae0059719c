# Runs, drills and exports hold the one lease of core/leases.py (LeasedJob): `worker` (host:pid) becomes
# the lease owner, kept on existing rows for the operator; heartbeat_at goes (the last renewal is the
# expiry less one lease).

from django.db import migrations, models
from django.db.models.functions import Left
from django.db.models.functions.text import Length

MODELS = ("backuprun", "restoreverification", "tenantexport")


def owners_fit(apps, schema_editor):
    """A host:pid longer than an owner token may be (64) is cut, so the column can shrink."""
    for name in MODELS:
        model = apps.get_model("backups", name)
        model.objects.annotate(owner_length=Length("lease_owner")).filter(owner_length__gt=64).update(
            lease_owner=Left("lease_owner", 64)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0002_leases_and_repositories"),
    ]

    operations = [
        *(migrations.RenameField(model_name=name, old_name="worker", new_name="lease_owner") for name in MODELS),
        migrations.RunPython(owners_fit, migrations.RunPython.noop),
        *(
            migrations.AlterField(
                model_name=name,
                name="lease_owner",
                field=models.CharField(blank=True, editable=False, max_length=64),
            )
            for name in MODELS
        ),
        *(migrations.RemoveField(model_name=name, name="heartbeat_at") for name in MODELS),
        *(
            migrations.AddField(
                model_name=name,
                name="attempts",
                field=models.PositiveIntegerField(default=0, help_text="How many times a worker took this job."),
            )
            for name in MODELS
        ),
        *(
            migrations.AlterField(
                model_name=name,
                name="lease_expires_at",
                field=models.DateTimeField(
                    blank=True,
                    editable=False,
                    help_text="The worker holding the job renews this while it works.",
                    null=True,
                ),
            )
            for name in MODELS
        ),
    ]
