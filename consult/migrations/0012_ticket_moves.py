import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0011_consultant_queue_message"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="move_hash",
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.AddField(
            model_name="ticket",
            name="came_from",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="consult.consultant",
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="transfer_note",
            field=models.CharField(blank=True, max_length=280),
        ),
    ]
