from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments and metrics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The reviewable services register themselves with the review gate (base.reviews) when
        # imported: every process, the worker applying scheduled changes included, knows them all.
        import experiments.launch
        import experiments.services  # noqa: F401
