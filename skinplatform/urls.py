from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from curation.views.health import public_healthz

urlpatterns = [
    path("healthz", public_healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("curation.api.urls")),
    path("", include("curation.urls")),
]
