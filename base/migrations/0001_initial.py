# Environments and API tokens move here from the flags app. Their tables keep their names
# (flags_environment, flags_apitoken), so only Django's state changes; the content types are
# renamed so that permissions granted on them carry over.

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("environment", "apitoken")


def rename_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not content_type.objects.filter(app_label="base", model=model).exists():
            content_type.objects.filter(app_label="flags", model=model).update(app_label="base")


def restore_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="base", model__in=MOVED).update(app_label="flags")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("flags", "0004_api_token_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Environment",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=64, unique=True, validators=[django.core.validators.RegexValidator("^[A-Za-z0-9._-]+$", "Use only letters, digits, dots, underscores and hyphens.")])),
                        ("name", models.CharField(max_length=120)),
                        ("client_key", models.CharField(max_length=64, unique=True)),
                        ("server_key", models.CharField(max_length=64, unique=True)),
                        ("config_version", models.BigIntegerField(default=1)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={"db_table": "flags_environment", "ordering": ["key"]},
                ),
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=120)),
                        ("scope", models.CharField(choices=[("read", "Read"), ("write", "Read and write")], default="read", max_length=10)),
                        ("prefix", models.CharField(max_length=12)),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "flags_apitoken", "verbose_name": "API token"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_types, restore_content_types),
    ]
