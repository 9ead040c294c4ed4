from django.contrib import admin

from scrm.admin import TenantOwnedAdmin

from .models import Coupon, CouponTemplate


@admin.register(CouponTemplate)
class CouponTemplateAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "type", "issued_count", "total_stock", "active")
    list_filter = ("tenant", "type", "active")
    search_fields = ("name",)
    exclude = ("stores",)  # chosen on the dashboard, inside the brand


@admin.register(Coupon)
class CouponAdmin(TenantOwnedAdmin):
    list_display = ("code", "tenant", "template", "status", "issued_at", "expires_at", "order_external_id")
    list_filter = ("tenant", "status", "source")
    search_fields = ("code", "order_external_id")
    raw_id_fields = ("template", "member", "store", "guide", "issued_by", "redeemed_store", "redeemed_guide")
    show_full_result_count = False
