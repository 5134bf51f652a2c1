from __future__ import annotations

from django.contrib import admin, messages

from vigil.servers.models import IngestToken, Location, Server, Tag


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ["name", "host_name", "location", "status", "last_seen"]
    list_filter = ["status", "location", "tags"]
    search_fields = ["name", "host_name"]
    filter_horizontal = ["tags"]
    readonly_fields = ["created", "last_seen"]


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "server", "enabled", "created", "last_used"]
    list_filter = ["enabled"]
    readonly_fields = ["prefix", "created", "last_used"]
    fields = ["name", "server", "enabled", "prefix", "created", "last_used"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created, token = IngestToken.issue(obj.name, obj.server)
        obj.pk, obj.token_hash, obj.prefix = created.pk, created.token_hash, created.prefix
        messages.warning(request, f"Copy this ingest token now, it is not shown again: {token}")
