from django.urls import path

from pages.flags import views as flag_views

app_name = "flag-pages"

urlpatterns = [
    path("", flag_views.flag_list, name="list"),
    path("<str:key>/", flag_views.flag_detail, name="detail"),
    path("<str:key>/ramps/new", flag_views.ramp_new, name="ramp-new"),
    path("<str:key>/environments/<str:env>/switch", flag_views.flag_switch, name="switch"),
    path("<str:key>/environments/<str:env>/ramps/<str:ramp_id>/stop", flag_views.ramp_stop, name="ramp-stop"),
]
