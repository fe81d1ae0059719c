from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cdn", "0003_invalidation_provider_fields_moved"),
    ]

    operations = [
        migrations.AddField(
            model_name="invalidation",
            name="hostnames",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="providerrequest",
            name="hostnames",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
