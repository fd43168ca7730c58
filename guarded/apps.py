from django.apps import AppConfig


class GuardedConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guarded"
    verbose_name = "Guarded rollouts"
