from django.contrib import admin
from django.urls import include, path

from consult import observability, views
from consult.throttle import ThrottledLoginView

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("call/<slug:slug>/", views.call, name="call"),
    path("desk/", views.desk, name="desk"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("healthz", observability.healthz, name="healthz"),
    path("metrics", observability.metrics, name="metrics"),
]
