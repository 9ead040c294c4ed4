from django.contrib import admin

from .models import ApiKey, Staff, Store, Tenant


class TenantOwnedAdmin(admin.ModelAdmin):
    """The admin is for platform superusers: it sees every tenant, and says so by name."""

    list_select_related = ("tenant",)

    def get_queryset(self, request):
        return self.model.objects.unscoped().select_related("tenant")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "time_zone", "currency", "default_language", "created_at")
    search_fields = ("slug", "name")


@admin.register(Store)
class StoreAdmin(TenantOwnedAdmin):
    list_display = ("code", "name", "city", "region", "active", "tenant")
    list_filter = ("tenant", "active")
    search_fields = ("code", "name")


@admin.register(Staff)
class StaffAdmin(TenantOwnedAdmin):
    list_display = ("name", "role", "tenant", "active")
    list_filter = ("tenant", "role", "active")
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
    filter_horizontal = ()


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    list_display = ("name", "prefix", "tenant", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    readonly_fields = ("prefix", "hashed_key", "created_at", "last_used_at")
