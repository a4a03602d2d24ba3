from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0010_consultation_anonymised_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="consultant",
            name="queue_message",
            field=models.CharField(blank=True, max_length=280),
        ),
    ]
