from django.contrib import admin

from scrm.admin import TenantOwnedAdmin

from .models import LifecycleRun, MemberLifecycle, StageChange, StageRules, StageRulesVersion


@admin.register(LifecycleRun)
class LifecycleRunAdmin(TenantOwnedAdmin):
    list_display = ("id", "tenant", "kind", "status", "as_of", "members_scored", "changes_total", "started_at", "finished_at")
    list_filter = ("tenant", "kind", "status")
    readonly_fields = [f.name for f in LifecycleRun._meta.fields]


@admin.register(MemberLifecycle)
class MemberLifecycleAdmin(TenantOwnedAdmin):
    list_display = ("member", "tenant", "stage", "churn_warning", "stage_since", "orders_365", "last_order_at")
    list_filter = ("tenant", "stage", "churn_warning")
    raw_id_fields = ("member", "store", "guide", "run")
    show_full_result_count = False


@admin.register(StageChange)
class StageChangeAdmin(TenantOwnedAdmin):
    list_display = ("member", "tenant", "from_stage", "to_stage", "from_warning", "to_warning", "at")
    list_filter = ("tenant", "to_stage")
    raw_id_fields = ("member", "store", "guide", "run")
    show_full_result_count = False


@admin.register(StageRules)
class StageRulesAdmin(TenantOwnedAdmin):
    list_display = ("tenant", "version", "dormant_after_days", "churn_after_days", "mature_min_orders", "updated_at")


@admin.register(StageRulesVersion)
class StageRulesVersionAdmin(TenantOwnedAdmin):
    list_display = ("tenant", "version", "changed_by_label", "changed_at")
    list_filter = ("tenant",)
