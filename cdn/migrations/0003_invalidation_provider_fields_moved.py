from django.db import migrations


class Migration(migrations.Migration):
    """The provider-side fields live on ProviderRequest now (copied over by 0002)."""

    dependencies = [("cdn", "0002_provider_requests")]

    operations = [
        migrations.RemoveIndex(
            model_name="invalidation",
            name="invalidation_in_progress",
        ),
        migrations.RemoveField(
            model_name="invalidation",
            name="attempts",
        ),
        migrations.RemoveField(
            model_name="invalidation",
            name="provider_id",
        ),
        migrations.RemoveField(
            model_name="invalidation",
            name="target",
        ),
    ]
