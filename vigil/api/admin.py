from __future__ import annotations

from django.contrib import admin, messages

from vigil.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "last_used"]
    readonly_fields = ["prefix", "created", "last_used"]
    fields = ["user", "name", "prefix", "created", "last_used"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created, token = ApiToken.issue(obj.user, obj.name)
        obj.pk, obj.token_hash, obj.prefix = created.pk, created.token_hash, created.prefix
        messages.warning(request, f"Copy this API token now, it is not shown again: {token}")
