from django.conf import settings
from django.urls import path
from django.views.generic import RedirectView

from pages import views

urlpatterns = [
    path("", views.home, name="home"),
    # Django's own default landing page after a login; the site has no profile page.
    path("accounts/profile/", RedirectView.as_view(url=settings.LOGIN_REDIRECT_URL), name="profile"),
]
