from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"
    verbose_name = "SDK edge"
    default_auto_field = "django.db.models.BigAutoField"
