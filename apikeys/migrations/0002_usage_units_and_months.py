import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apikeys", "0001_initial"),
        ("tenants", "0006_usage_plans"),
    ]

    operations = [
        migrations.AddField(model_name="apiusageminute", name="units", field=models.PositiveBigIntegerField(default=0)),
        migrations.CreateModel(
            name="TenantUsageMonth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(help_text="The first day of the month.")),
                ("units", models.PositiveBigIntegerField(default=0)),
                ("warning_sent_at", models.DateTimeField(blank=True, null=True)),
                ("exceeded_sent_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.tenant"
                    ),
                ),
            ],
            options={
                "ordering": ["-month"],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "month"), name="usage_one_row_per_tenant_month")
                ],
            },
        ),
    ]
