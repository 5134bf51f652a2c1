from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from vigil.api import alerts as api_alerts
from vigil.api import notify as api_notify
from vigil.api import openapi as api_openapi
from vigil.api import views as api
from vigil.ingest import views as ingest
from vigil.ingest import views_collectd, views_prometheus
from vigil.ingest import views_influx as influx
from vigil.scrape import views as scrape
from vigil.web import alerts as web_alerts
from vigil.web import notify as web_notify
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
    path("alerts/", web_alerts.alerts_page, name="alerts"),
    path("alerts/<int:pk>/acknowledge", web_alerts.acknowledge, name="alert-acknowledge"),
    path("alerts/silences/", web_alerts.silences, name="silences"),
    path("alerts/silences/new", web_alerts.silence_new, name="silence-new"),
    path("alerts/silences/<int:pk>/expire", web_alerts.silence_expire, name="silence-expire"),
    path("alerts/rules/", web_alerts.rules, name="rules"),
    path("alerts/rules/new", web_alerts.rule_edit, name="rule-new"),
    path("alerts/rules/backtest", web_alerts.rule_backtest, name="rule-backtest"),
    path("alerts/rules/<int:pk>/", web_alerts.rule_edit, name="rule"),
    path("alerts/rules/<int:pk>/enabled", web_alerts.rule_enable, name="rule-enable"),
    path("alerts/channels/", web_notify.channels, name="channels"),
    path("alerts/channels/new", web_notify.channel_edit, name="channel-new"),
    path("alerts/channels/<int:pk>/", web_notify.channel_edit, name="channel"),
    path("alerts/channels/<int:pk>/test", web_notify.channel_test, name="channel-test"),
    path("alerts/channels/<int:pk>/delete", web_notify.channel_delete, name="channel-delete"),
    path("alerts/routes/", web_notify.routes, name="routes"),
    path("alerts/routes/new", web_notify.route_edit, name="route-new"),
    path("alerts/routes/<int:pk>/", web_notify.route_edit, name="route"),
    path("alerts/routes/<int:pk>/delete", web_notify.route_delete, name="route-delete"),
    path("alerts/deliveries/<int:pk>/", web_notify.delivery, name="delivery"),
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
    path("api/v1/openapi.json", api_openapi.schema_view, name="api-openapi"),
    path("api/v1/query", api.query_view, name="api-query"),
    path("api/v1/servers", api.servers_view, name="api-servers"),
    path("api/v1/rules", api_alerts.rules, name="api-rules"),
    path("api/v1/rules/backtest", api_alerts.rule_backtest, name="api-rule-backtest"),
    path("api/v1/rules/<int:pk>", api_alerts.rule_detail, name="api-rule"),
    path("api/v1/alerts", api_alerts.alerts, name="api-alerts"),
    path("api/v1/alerts/<int:pk>", api_alerts.alert_detail, name="api-alert"),
    path(
        "api/v1/alerts/<int:pk>/acknowledge",
        api_alerts.alert_acknowledge,
        name="api-alert-acknowledge",
    ),
    path("api/v1/silences", api_alerts.silences, name="api-silences"),
    path("api/v1/silences/<int:pk>", api_alerts.silence_detail, name="api-silence"),
    path("api/v1/notifications", api_alerts.notifications, name="api-notifications"),
    path("api/v1/channels", api_notify.channels, name="api-channels"),
    path("api/v1/channels/<int:pk>", api_notify.channel_detail, name="api-channel"),
    path("api/v1/channels/<int:pk>/test", api_notify.channel_test, name="api-channel-test"),
    path("api/v1/routes", api_notify.routes, name="api-routes"),
    path("api/v1/routes/<int:pk>", api_notify.route_detail, name="api-route"),
    path("api/v1/deliveries", api_notify.deliveries, name="api-deliveries"),
    path("api/v1/deliveries/<int:pk>", api_notify.delivery_detail, name="api-delivery"),
    path("write", influx.write, name="influx-write"),
    path("query", influx.query, name="influx-query"),
    path("ping", influx.ping, name="influx-ping"),
]
