import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0012_ticket_moves"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="notify_email",
            field=models.EmailField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name="ticket",
            name="notify_place",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="ticket",
            name="notified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="Callback",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("caller_name", models.CharField(max_length=80)),
                (
                    "contact",
                    models.CharField(
                        help_text="A phone number or an e-mail address.",
                        max_length=120,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=500)),
                ("caller_address", models.CharField(blank=True, max_length=45)),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_index=True),
                ),
                (
                    "consultant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="callbacks",
                        to="consult.consultant",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
            },
        ),
    ]
