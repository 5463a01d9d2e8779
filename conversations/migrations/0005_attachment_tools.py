import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import conversations.models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0004_conversation_branch_leaf'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='tools',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='conversation',
            name='response_schema',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='Attachment',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True,
                                        serialize=False)),
                ('sha256', models.CharField(max_length=64)),
                ('file', models.FileField(max_length=255,
                                          upload_to=conversations.models.attachment_path)),
                ('mime_type', models.CharField(max_length=100)),
                ('kind', models.CharField(max_length=20)),
                ('name', models.CharField(blank=True, max_length=255)),
                ('size', models.PositiveBigIntegerField()),
                ('source', models.CharField(choices=[('upload', 'Upload'),
                                                     ('generated', 'Generated')],
                                            default='upload', max_length=20)),
                ('remote_name', models.CharField(blank=True, max_length=255)),
                ('remote_uri', models.CharField(blank=True, max_length=500)),
                ('remote_expires', models.DateTimeField(blank=True, null=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name='attachments',
                                            to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created'],
                'constraints': [models.UniqueConstraint(fields=('owner', 'sha256'),
                                                        name='attachment_unique_sha256')],
            },
        ),
    ]
