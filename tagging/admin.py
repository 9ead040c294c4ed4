from django.contrib import admin

from scrm.admin import TenantOwnedAdmin as TenantAdmin

from .models import MemberTag, Segment, SegmentSnapshot, Tag, TagChange, TagGroup


@admin.register(TagGroup)
class TagGroupAdmin(TenantAdmin):
    list_display = ["name", "tenant", "kind", "exclusive", "refreshed_at"]
    list_filter = ["kind"]


@admin.register(Tag)
class TagAdmin(TenantAdmin):
    list_display = ["name", "group", "tenant", "colour"]
    raw_id_fields = ["group"]


@admin.register(MemberTag)
class MemberTagAdmin(TenantAdmin):
    list_display = ["member", "tag", "source", "added_by", "added_at"]
    raw_id_fields = ["member", "tag", "group", "added_by"]


@admin.register(TagChange)
class TagChangeAdmin(TenantAdmin):
    list_display = ["member", "tag", "action", "source", "staff", "at"]
    raw_id_fields = ["member", "tag", "staff"]


@admin.register(Segment)
class SegmentAdmin(TenantAdmin):
    list_display = ["name", "tenant", "last_count", "last_evaluated_at"]


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(TenantAdmin):
    list_display = ["segment", "taken_at", "member_count"]
    raw_id_fields = ["segment"]
