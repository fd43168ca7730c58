from django.apps import AppConfig


class BaseConfig(AppConfig):
    name = "base"
    verbose_name = "Environments and access"
    default_auto_field = "django.db.models.BigAutoField"
