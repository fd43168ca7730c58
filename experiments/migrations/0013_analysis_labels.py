# Labels of the analysis settings: CUPED, target MDE and SRM read as acronyms.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0012_data_sources'),
    ]

    operations = [
        migrations.AlterField(
            model_name='experiment',
            name='cuped',
            field=models.BooleanField(default=True, verbose_name='CUPED'),
        ),
        migrations.AlterField(
            model_name='experiment',
            name='cuped_lookback_days',
            field=models.PositiveIntegerField(default=14, validators=[django.core.validators.MaxValueValidator(90)], verbose_name='CUPED lookback days'),
        ),
        migrations.AlterField(
            model_name='experiment',
            name='target_mde',
            field=models.FloatField(blank=True, help_text='Smallest relative effect on the primary metric worth detecting (0.05 = 5%); above 0, at most 10.', null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(10.0)], verbose_name='target MDE'),
        ),
        migrations.AlterField(
            model_name='resultsnapshot',
            name='srm_p_value',
            field=models.FloatField(blank=True, null=True, verbose_name='SRM p-value'),
        ),
        migrations.AlterField(
            model_name='resultsnapshot',
            name='srm_warning',
            field=models.BooleanField(default=False, verbose_name='SRM warning'),
        ),
    ]
