from django.contrib import admin
from django.urls import include, path, re_path

from consult import (
    embed_views,
    i18n_views,
    observability,
    recording_views,
    seat_views,
    views,
)

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("call/<slug:slug>/", views.call, name="call"),
    path(
        "call/<slug:slug>/back/<str:signed>/",
        seat_views.return_to_seat,
        name="return_to_seat",
    ),
    path("desk/", views.desk, name="desk"),
    # Recordings (docs/recording.md): the desk's uploads, the admin's file.
    path(
        "recordings/<int:recording_id>/chunks/<int:seq>/",
        recording_views.chunk,
        name="recording-chunk",
    ),
    path(
        "recordings/<int:recording_id>/file",
        recording_views.play,
        name="recording-file",
    ),
    path(
        "recordings/<int:recording_id>/delete/",
        recording_views.delete,
        name="recording-delete",
    ),
    # The embedded consulting bot (docs/embed.md).
    path("embed.js", embed_views.script, name="embed-script"),
    re_path(
        r"^embed\.(?P<version>[0-9a-f]{12})\.js$",
        embed_views.versioned_script,
        name="embed-script-versioned",
    ),
    path("embed/", embed_views.picker, name="embed-picker"),
    path("embed/site.js", embed_views.site_check, name="embed-site"),
    path("embed/call/<str:slug>/", embed_views.call, name="embed-call"),
    path("embed/demo/", embed_views.demo, name="embed-demo"),
    # Translations for the ES modules (static/js/i18n.js), and set_language.
    path("jsi18n/", i18n_views.javascript_catalog, name="javascript-catalog"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("django.contrib.auth.urls")),
    # The operations room: live board and analytics (docs/operations.md).
    path("admin/ops/", include("consult.ops_urls")),
    path("admin/", admin.site.urls),
    path("healthz", observability.healthz, name="healthz"),
    path("metrics", observability.metrics, name="metrics"),
]
