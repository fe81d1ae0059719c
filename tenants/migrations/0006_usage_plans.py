from django.db import migrations, models

# The plans a fresh database starts with, as documented (tenants.models.DEFAULT_USAGE_PLANS at the time).
PLANS = {
    "free": (None, 100, 100_000),
    "starter": (None, 1_000, 5_000_000),
    "professional": (None, 5_000, 50_000_000),
    "enterprise": (None, 50_000, None),
}


def seed_plans(apps, schema_editor):
    UsagePlan = apps.get_model("tenants", "UsagePlan")
    for tier, (burst, minute, quota) in PLANS.items():
        UsagePlan.objects.get_or_create(
            tier=tier, defaults={"burst_per_second": burst, "requests_per_minute": minute, "monthly_quota": quota}
        )


def _positive(field):
    return models.CheckConstraint(
        condition=models.Q((f"{field}__isnull", True), (f"{field}__gte", 1), _connector="OR"),
        name=f"usage_plan_{field}_positive",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_deployment_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant", name="burst_override", field=models.PositiveIntegerField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="tenant",
            name="monthly_quota_override",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="UsagePlan",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "tier",
                    models.CharField(
                        choices=[
                            ("free", "Free"),
                            ("starter", "Starter"),
                            ("professional", "Professional"),
                            ("enterprise", "Enterprise"),
                        ],
                        max_length=20,
                        unique=True,
                    ),
                ),  # fmt: skip
                ("burst_per_second", models.PositiveIntegerField(blank=True, help_text="Units a second.", null=True)),
                (
                    "requests_per_minute",
                    models.PositiveIntegerField(blank=True, help_text="Units a minute.", null=True),
                ),
                (
                    "monthly_quota",
                    models.PositiveBigIntegerField(
                        blank=True, help_text="Units a calendar month (UTC), over all the tenant's keys.", null=True
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["tier"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("tier__in", ["free", "starter", "professional", "enterprise"])),
                        name="usage_plan_tier_valid",
                    ),
                    _positive("burst_per_second"),
                    _positive("requests_per_minute"),
                    _positive("monthly_quota"),
                ],
            },
        ),
        migrations.RunPython(seed_plans, migrations.RunPython.noop),
    ]
