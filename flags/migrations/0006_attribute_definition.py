# Attribute definitions: the context attributes conditions are written against.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('flags', '0005_environment_in_base'),
    ]

    operations = [
        migrations.CreateModel(
            name='AttributeDefinition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('type', models.CharField(choices=[('string', 'String'), ('number', 'Number'), ('boolean', 'Boolean'), ('semver', 'Version (semver)'), ('list', 'List')], default='string', max_length=10)),
                ('allowed_values', models.JSONField(blank=True, default=list)),
                ('description', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'attribute',
                'ordering': ['name'],
            },
        ),
    ]
