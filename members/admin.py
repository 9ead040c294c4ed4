from django.contrib import admin

from scrm.admin import TenantOwnedAdmin

from .models import Event, ImportJob, Member, Order


@admin.register(Member)
class MemberAdmin(TenantOwnedAdmin):
    list_display = ("external_id", "name", "mobile", "tenant", "joined_at", "contact_status")
    list_filter = ("tenant", "contact_status")
    search_fields = ("external_id", "mobile")
    raw_id_fields = ("home_store", "owner_guide")
    show_full_result_count = False


@admin.register(Order)
class OrderAdmin(TenantOwnedAdmin):
    list_display = ("external_id", "tenant", "placed_at", "status", "total", "refunded_amount")
    list_filter = ("tenant", "status")
    search_fields = ("external_id",)
    raw_id_fields = ("member", "store", "guide")
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(TenantOwnedAdmin):
    list_display = ("type", "tenant", "occurred_at", "external_id")
    list_filter = ("tenant", "type")
    raw_id_fields = ("member",)
    show_full_result_count = False


@admin.register(ImportJob)
class ImportJobAdmin(TenantOwnedAdmin):
    list_display = ("file_name", "kind", "tenant", "status", "rows_done", "error_count", "created_at")
    list_filter = ("tenant", "kind", "status")
