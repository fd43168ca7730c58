import base.keys
from django.db import migrations, models


def own_keys(apps, schema_editor):
    """Existing environments got one default between them: give each its own key and salt."""
    Environment = apps.get_model("base", "Environment")
    for env in Environment.objects.all():
        env.decryption_key = base.keys.new_decryption_key()
        env.attribute_salt = base.keys.new_attribute_salt()
        env.save(update_fields=["decryption_key", "attribute_salt"])


class Migration(migrations.Migration):

    dependencies = [
        ('base', '0004_change_requests'),
    ]

    operations = [
        migrations.AddField(
            model_name='environment',
            name='attribute_salt',
            field=models.CharField(default=base.keys.new_attribute_salt, max_length=64),
        ),
        migrations.AddField(
            model_name='environment',
            name='client_payload',
            field=models.CharField(choices=[('full', 'Full rules'), ('private', 'Private segments hashed'), ('encrypted', 'Encrypted, private segments hashed'), ('remote', 'Remote evaluation only')], default='full', max_length=12),
        ),
        migrations.AddField(
            model_name='environment',
            name='decryption_key',
            field=models.CharField(default=base.keys.new_decryption_key, max_length=64),
        ),
        migrations.RunPython(own_keys, migrations.RunPython.noop),
    ]
