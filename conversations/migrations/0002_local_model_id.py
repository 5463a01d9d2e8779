"""The offline model's id no longer names one model file: "local-smollm2" becomes "local"."""

from django.db import migrations


def rename(apps, schema_editor, old="local-smollm2", new="local"):
    apps.get_model("conversations", "Conversation").objects.filter(model=old).update(model=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, old="local", new="local-smollm2")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(rename, rename_back)]
