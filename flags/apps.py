from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The reviewable services register themselves with the review gate (base.reviews) when
        # imported: every process, the worker applying scheduled changes included, knows them all.
        import flags.ramps
        import flags.rule_sets
        import flags.services  # noqa: F401
