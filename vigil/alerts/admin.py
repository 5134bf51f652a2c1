from __future__ import annotations

from django.contrib import admin

from vigil.alerts.forms import RULE_GROUPS
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, ServerGroup, Silence


@admin.register(ServerGroup)
class ServerGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    filter_horizontal = ["servers"]
    search_fields = ["name"]


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "severity", "kind", "metric", "scope", "last_evaluated"]
    list_filter = ["enabled", "severity", "kind", "scope"]
    search_fields = ["name", "metric"]
    readonly_fields = ["is_default", "last_evaluated", "last_error"]
    fieldsets = [
        *((title, {"fields": names}) for title, names in RULE_GROUPS),
        ("Status", {"fields": ["is_default", "last_evaluated", "last_error"]}),
    ]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["__str__", "state", "value", "fired_at", "silenced", "suppressed", "flapping"]
    list_filter = ["state", "silenced", "flapping", "rule"]
    list_select_related = ["rule", "server", "location"]
    raw_id_fields = ["series", "server", "location", "acknowledged_by"]

    def has_add_permission(self, request) -> bool:
        return False  # alerts come from rules


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["at", "kind", "rule", "server", "value", "text"]
    list_filter = ["kind", "rule"]
    list_select_related = ["rule", "server"]
    raw_id_fields = ["alert", "server"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "starts_at", "ends_at", "server", "location", "tag", "rule"]
    raw_id_fields = ["until_resolved"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created", "kind", "title", "severity", "delivered_at"]
    list_filter = ["kind", "severity"]
    readonly_fields = ["items"]

    def has_add_permission(self, request) -> bool:
        return False
