"""Drop the single-column indexes Django made for three foreign keys: composite indexes lead with
those columns already, and each extra index cost one more write per delivery and attempt.

Only the indexes are dropped (the foreign-key constraints stay as they are: AlterField would drop and
re-validate them, scanning the tables under lock).
"""

import django.db.models.deletion
from django.db import migrations, models

REDUNDANT = [
    ("webhooks_attempt_delivery_id_bb1708b1", "webhooks_attempt", "delivery_id"),
    ("webhooks_delivery_endpoint_id_6cbee67d", "webhooks_delivery", "endpoint_id"),
    ("webhooks_delivery_event_id_b6f5af91", "webhooks_delivery", "event_id"),
]


def _foreign_key(to: str, related_name: str):
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name=related_name, to=to
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"', reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")'
                )
                for name, table, column in REDUNDANT
            ],
            state_operations=[
                migrations.AlterField("attempt", "delivery", _foreign_key("webhooks.delivery", "attempts")),
                migrations.AlterField("delivery", "endpoint", _foreign_key("webhooks.endpoint", "deliveries")),
                migrations.AlterField("delivery", "event", _foreign_key("webhooks.event", "deliveries")),
            ],
        ),
    ]
