from django.urls import path

from pages.holdouts import growth, views

app_name = "holdout-pages"

urlpatterns = [
    path("growth/<str:environment>/", growth.growth, name="growth"),
    path("<str:key>/<str:environment>/", views.holdout_detail, name="detail"),
    path("<str:key>/<str:environment>/refresh", views.holdout_refresh, name="refresh"),
]
