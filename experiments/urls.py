from django.urls import path

from experiments import apis, growth_apis, holdout_apis

urlpatterns = [
    path("data-sources", apis.DataSourceListApi.as_view(), name="data-source-list"),
    path("data-sources/<str:key>", apis.DataSourceDetailApi.as_view(), name="data-source-detail"),
    path("data-sources/<str:key>/test", apis.DataSourceTestApi.as_view(), name="data-source-test"),
    path("north-star", growth_apis.NorthStarApi.as_view(), name="north-star"),
    path("metrics", apis.MetricListApi.as_view(), name="metric-list"),
    path("metrics/<str:key>", apis.MetricDetailApi.as_view(), name="metric-detail"),
    path("metrics/<str:key>/archive", apis.MetricArchiveApi.as_view(), name="metric-archive"),
    path("metrics/<str:key>/restore", apis.MetricRestoreApi.as_view(), name="metric-restore"),
    path("experiments", apis.ExperimentListApi.as_view(), name="experiment-list"),
    path("experiments/<str:key>", apis.ExperimentDetailApi.as_view(), name="experiment-detail"),
    path("experiments/<str:key>/start", apis.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<str:key>/stop", apis.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<str:key>/archive", apis.ExperimentArchiveApi.as_view(), name="experiment-archive"),
    path("experiments/<str:key>/refresh", apis.ExperimentRefreshApi.as_view(), name="experiment-refresh"),
    path("experiments/<str:key>/ramp", apis.ExperimentRampApi.as_view(), name="experiment-ramp"),
    path("experiments/<str:key>/results", apis.ExperimentResultsApi.as_view(), name="experiment-results"),
    path("holdouts", holdout_apis.HoldoutListApi.as_view(), name="holdout-list"),
    path("holdouts/<str:key>", holdout_apis.HoldoutDetailApi.as_view(), name="holdout-detail"),
    path("holdouts/<str:key>/refresh", holdout_apis.HoldoutRefreshApi.as_view(), name="holdout-refresh"),
    path("holdouts/<str:key>/end", holdout_apis.HoldoutEndApi.as_view(), name="holdout-end"),
    path("project/settings", apis.ProjectSettingsApi.as_view(), name="project-settings"),
]
