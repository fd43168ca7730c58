from django.urls import path

from pages.experiments import exports, ramp, views, wizard

app_name = "experiment-pages"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/<str:step>/", wizard.wizard, name="wizard"),
    path("<str:key>/", views.experiment_detail, name="detail"),
    path("<str:key>/panels/<str:name>", views.experiment_panel, name="panel"),
    path("<str:key>/export.json", exports.experiment_export_json, name="export-json"),
    path("<str:key>/export.csv", exports.experiment_export_csv, name="export-csv"),
    path("<str:key>/start", views.experiment_start, name="start"),
    path("<str:key>/stop", views.experiment_stop, name="stop"),
    path("<str:key>/refresh", views.experiment_refresh, name="refresh"),
    path("<str:key>/ramp", ramp.experiment_ramp, name="ramp"),
]
