from django.apps import AppConfig


class GuardedConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guarded"
    verbose_name = "Guarded rollouts"

    def ready(self) -> None:
        # Registers the reviewable services with the review gate (base.reviews).
        import guarded.services  # noqa: F401
