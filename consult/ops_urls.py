"""The operations room's admin pages (/admin/ops/…): staff only, through the
admin site's own login and checks (`admin_view`)."""

from django.contrib import admin
from django.urls import path

from . import analytics_views, board_views

urlpatterns = [
    path("board/", admin.site.admin_view(board_views.board), name="ops-board"),
    path(
        "board/state.json",
        admin.site.admin_view(board_views.board_json),
        name="ops-board-state",
    ),
    path(
        "board/act/", admin.site.admin_view(board_views.board_act), name="ops-board-act"
    ),
    path(
        "analytics/",
        admin.site.admin_view(analytics_views.analytics),
        name="ops-analytics",
    ),
]
