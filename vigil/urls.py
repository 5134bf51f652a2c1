from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from vigil.api import views as api
from vigil.ingest import views as ingest
from vigil.ingest import views_collectd, views_prometheus
from vigil.ingest import views_influx as influx
from vigil.scrape import views as scrape
from vigil.web import views as web

urlpatterns = [
    path("", web.home, name="home"),
    path("servers/fragment/", web.server_list_fragment, name="server-list-fragment"),
    path("servers/<int:pk>/", web.server_detail, name="server"),
    path("servers/<int:pk>/scrape-targets/", scrape.add_target, name="scrape-target-add"),
    path(
        "servers/<int:pk>/scrape-targets/<int:target_pk>/delete/",
        scrape.remove_target,
        name="scrape-target-remove",
    ),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", api.healthz, name="healthz"),
    path("metrics", api.metrics_view, name="metrics"),
    path("api/v1/ingest", ingest.ingest_json, name="ingest"),
    path("api/v1/ingest/collectd", views_collectd.ingest_collectd, name="ingest-collectd"),
    path(
        "api/v1/ingest/prometheus",
        views_prometheus.ingest_prometheus,
        name="ingest-prometheus",
    ),
    path("api/v1/query", api.query_view, name="api-query"),
    path("api/v1/servers", api.servers_view, name="api-servers"),
    path("write", influx.write, name="influx-write"),
    path("query", influx.query, name="influx-query"),
    path("ping", influx.ping, name="influx-ping"),
]
