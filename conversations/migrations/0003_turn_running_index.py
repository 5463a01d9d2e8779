from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("conversations", "0002_local_model_id")]

    operations = [
        migrations.AddIndex(
            model_name="turn",
            index=models.Index(condition=models.Q(("status__in", ["queued", "in_progress"])),
                               fields=["status"], name="turn_running"),
        ),
    ]
