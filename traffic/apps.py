from django.apps import AppConfig


class TrafficConfig(AppConfig):
    name = "traffic"
    verbose_name = "Traffic (layers and holdouts)"
    default_auto_field = "django.db.models.BigAutoField"
