from django.contrib import admin

from scrm.admin import TenantOwnedAdmin

from .models import Campaign, GuideTask, Message


@admin.register(Campaign)
class CampaignAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "status", "trigger", "created_at")
    list_filter = ("tenant", "status", "trigger")
    search_fields = ("name",)
    exclude = ("segment",)  # chosen on the dashboard, inside the brand


@admin.register(GuideTask)
class GuideTaskAdmin(TenantOwnedAdmin):
    list_display = ("pk", "tenant", "campaign", "guide", "status", "due_at")
    list_filter = ("tenant", "status")
    raw_id_fields = ("enrolment", "step", "campaign", "member", "guide", "store", "coupon")


@admin.register(Message)
class MessageAdmin(TenantOwnedAdmin):
    list_display = ("pk", "tenant", "channel", "recipient", "status", "attempts", "created_at")
    list_filter = ("tenant", "status", "channel")
    search_fields = ("recipient", "idempotency_key", "provider_id")
    raw_id_fields = ("member", "campaign", "step")
