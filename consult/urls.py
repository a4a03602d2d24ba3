from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("call/<slug:slug>/", views.call, name="call"),
    path("desk/", views.desk, name="desk"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
