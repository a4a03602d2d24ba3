from django.db import migrations, models


class Migration(migrations.Migration):
    """The caller's page language serves the recording consent text as well as
    the e-mail: `notify_language` becomes `language`, its values kept."""

    dependencies = [
        ("consult", "0018_i18n_of_recordings_quality_connectivity"),
    ]

    operations = [
        migrations.RenameField(
            model_name="ticket", old_name="notify_language", new_name="language"
        ),
        migrations.AlterField(
            model_name="ticket",
            name="language",
            field=models.CharField(blank=True, max_length=12, verbose_name="language"),
        ),
    ]
