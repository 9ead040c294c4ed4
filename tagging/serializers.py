import re

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from scrm.api import TenantRelatedField

from .models import MemberTag, Segment, SegmentSnapshot, Tag, TagChange, TagGroup


class TagGroupSerializer(serializers.ModelSerializer):
    tag_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = TagGroup
        fields = ["id", "name", "kind", "exclusive", "description", "position", "tag_count", "created_at", "refreshed_at"]
        read_only_fields = ["id", "created_at", "refreshed_at"]

    def validate_name(self, value):
        qs = TagGroup.objects.filter(name=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError(_("A tag group with this name already exists."))
        return value

    def validate_kind(self, value):
        if self.instance is not None and value != self.instance.kind and self.instance.tags.exists():
            raise serializers.ValidationError(_("A group with tags cannot change its kind."))
        return value


class TagSerializer(serializers.ModelSerializer):
    group = TenantRelatedField(TagGroup)
    member_count = serializers.IntegerField(read_only=True, required=False)
    rule = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        model = Tag
        fields = ["id", "group", "name", "colour", "description", "position", "rule", "member_count", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_colour(self, value):
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise serializers.ValidationError(_("A colour like #1f77b4."))
        return value.lower()

    def validate(self, attrs):
        group = attrs.get("group") or (self.instance.group if self.instance else None)
        name = attrs.get("name") or (self.instance.name if self.instance else None)
        qs = Tag.objects.filter(group=group, name=name)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError({"name": [_("This group already has a tag with this name.")]})
        return attrs


class MemberTagSerializer(serializers.ModelSerializer):
    tag = serializers.IntegerField(source="tag_id", read_only=True)
    tag_name = serializers.CharField(source="tag.name", read_only=True)
    colour = serializers.CharField(source="tag.colour", read_only=True)
    group = serializers.IntegerField(source="group_id", read_only=True)
    group_name = serializers.CharField(source="group.name", read_only=True)
    added_by = serializers.IntegerField(source="added_by_id", read_only=True)
    added_by_name = serializers.CharField(source="added_by.name", read_only=True, default=None)

    class Meta:
        model = MemberTag
        fields = ["tag", "tag_name", "colour", "group", "group_name", "source", "added_by", "added_by_name", "added_at"]


class MemberTagAddSerializer(serializers.Serializer):
    tag = TenantRelatedField(Tag)


class TagChangeSerializer(serializers.ModelSerializer):
    tag_name = serializers.CharField(source="tag.name", read_only=True)
    staff_name = serializers.CharField(source="staff.name", read_only=True, default=None)

    class Meta:
        model = TagChange
        fields = ["id", "member", "tag", "tag_name", "action", "source", "staff", "staff_name", "at"]


class ApplyTagsSerializer(serializers.Serializer):
    """Who: exactly one of member_ids, segment or filter (the members list's filter fields)."""

    add = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=50)
    remove = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=50)
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100_000, allow_empty=False
    )
    segment = TenantRelatedField(Segment, required=False)
    filter = serializers.DictField(required=False)

    def validate(self, attrs):
        chosen = [key for key in ("member_ids", "segment", "filter") if key in attrs]
        if len(chosen) != 1:
            raise serializers.ValidationError(
                {"member_ids": [_("Give exactly one of member_ids, segment or filter.")]}
            )
        if not attrs["add"] and not attrs["remove"]:
            raise serializers.ValidationError({"add": [_("Say which tags to add or remove.")]})
        return attrs


class ApplyResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    removed = serializers.IntegerField()


class SegmentSerializer(serializers.ModelSerializer):
    rules = serializers.JSONField()

    class Meta:
        model = Segment
        fields = [
            "id", "name", "description", "rules", "last_count", "last_evaluated_at", "created_by", "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_count", "last_evaluated_at", "created_by", "created_at", "updated_at"]

    def validate_name(self, value):
        qs = Segment.objects.filter(name=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError(_("A segment with this name already exists."))
        return value


class RulesSerializer(serializers.Serializer):
    rules = serializers.JSONField()


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    as_of = serializers.DateTimeField()


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentSnapshot
        fields = ["id", "segment", "rules", "taken_at", "member_count", "created_by"]
