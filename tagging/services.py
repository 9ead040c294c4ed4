"""Tags and segments: the one place that writes.

Tagging many members is two set-based statements per tag (log the change, then write the
tag) over the members' query, never a loop over members. Each statement pair runs with the
tag's row locked, so two concurrent calls cannot log the same change twice.
"""
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member

from .conditions import ConditionError, Context, compile_tree, parse, referenced_segments
from .models import MemberTag, Segment, SegmentSnapshot, SnapshotMember, Tag, TagChange, TagGroup, TagSource

MAX_TAGS_PER_APPLY = 50


class TaggingError(Exception):
    """A request the caller can fix; ``errors`` maps field names to messages."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def _sql(queryset):
    return queryset.query.sql_with_params()


def _members_sql(members):
    """SQL selecting the ids of ``members`` (a Member queryset) as column ``mid``."""
    return _sql(members.order_by().values(mid=F("pk")))


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


# ---------------------------------------------------------------- tag groups and tags

def validate_rule(rule, path="rule"):
    """A tag rule is a segment tree; return it or raise ConditionError."""
    parse(rule, path=path)
    return rule


@transaction.atomic
def save_tag_group(tenant, data, group=None):
    group = group or TagGroup(tenant=tenant)
    for field in ("name", "kind", "exclusive", "description", "position"):
        if field in data:
            setattr(group, field, data[field])
    group.save()
    return group


@transaction.atomic
def save_tag(tenant, data, tag=None):
    tag = tag or Tag(tenant=tenant)
    group = data.get("group", tag.group if tag.pk else None)
    if tag.pk and group.pk != tag.group_id:
        raise TaggingError({"group": [_("A tag cannot move to another group.")]})
    rule = data.get("rule", tag.rule)
    if group.automatic:
        if not rule:
            raise TaggingError({"rule": [_("A tag of an automatic group needs a rule.")]})
        try:
            validate_rule(rule)
        except ConditionError as exc:
            raise TaggingError(exc.errors) from None
    elif rule:
        raise TaggingError({"rule": [_("Only tags of automatic groups have rules.")]})
    tag.group = group
    for field in ("name", "colour", "description", "position", "rule"):
        if field in data:
            setattr(tag, field, data[field])
    tag.save()
    return tag


# ---------------------------------------------------------------- manual tagging

def _log_and_insert(tenant, tag, members, source, staff, at):
    """Give ``tag`` to the members that lack it; log each gain. Returns how many gained it."""
    members_sql, params = _members_sql(members)
    staff_id = staff.pk if staff else None
    lacking = (
        f"FROM ({members_sql}) m WHERE NOT EXISTS (SELECT 1 FROM {_table(MemberTag)} mt "
        f"WHERE mt.tenant_id = %s AND mt.member_id = m.mid AND mt.tag_id = %s)"
    )
    lacking_params = [*params, tenant.pk, tag.pk]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(TagChange)} (tenant_id, member_id, tag_id, action, source, staff_id, at) "
            f"SELECT %s, m.mid, %s, %s, %s, %s, %s {lacking}",
            [tenant.pk, tag.pk, TagChange.Action.ADDED, source, staff_id, at, *lacking_params],
        )
        cursor.execute(
            f"INSERT INTO {_table(MemberTag)} (tenant_id, member_id, tag_id, group_id, source, added_by_id, added_at) "
            f"SELECT %s, m.mid, %s, %s, %s, %s, %s {lacking} "
            f"ON CONFLICT (tenant_id, member_id, tag_id) DO NOTHING",
            [tenant.pk, tag.pk, tag.group_id, source, staff_id, at, *lacking_params],
        )
        return cursor.rowcount


def _log_and_delete(tenant, held, source, staff, at):
    """Take away the MemberTag rows of ``held`` (a MemberTag queryset); log each loss."""
    sql, params = _sql(held.order_by().values("member_id", "tag_id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(TagChange)} (tenant_id, member_id, tag_id, action, source, staff_id, at) "
            f"SELECT %s, h.member_id, h.tag_id, %s, %s, %s, %s FROM ({sql}) h",
            [tenant.pk, TagChange.Action.REMOVED, source, staff.pk if staff else None, at, *params],
        )
    count, _by_model = held.delete()
    return count


def _lock_tags(tag_ids):
    return list(Tag.objects.select_for_update().select_related("group").filter(pk__in=tag_ids).order_by("pk"))


def apply_tags(tenant, members, add=(), remove=(), source=TagSource.MANUAL, staff=None, as_of=None):
    """Add and remove tags on every member of ``members`` (a Member queryset, already limited to
    what the caller may see). Adding a tag of an exclusive group takes the member's other tags of
    that group away. Returns {"added": n, "removed": n}."""
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    if not add and not remove:
        raise TaggingError({"add": [_("Say which tags to add or remove.")]})
    if len(add) + len(remove) > MAX_TAGS_PER_APPLY:
        raise TaggingError({"add": [_("At most %(n)d tags at once.") % {"n": MAX_TAGS_PER_APPLY}]})
    if set(add) & set(remove):
        raise TaggingError({"remove": [_("A tag cannot be added and removed at once.")]})
    at = as_of or timezone.now()
    with transaction.atomic():
        tags = {tag.pk: tag for tag in _lock_tags(add + remove)}
        for field, ids in (("add", add), ("remove", remove)):
            missing = [i for i in ids if i not in tags]
            if missing:
                raise TaggingError({field: [_("No tag with id %(ids)s.") % {"ids": ", ".join(map(str, missing))}]})
            if source != TagSource.AUTOMATIC:
                kept = [tags[i].name for i in ids if tags[i].group.automatic]
                if kept:
                    raise TaggingError({field: [
                        _("%(tags)s: tags of automatic groups are kept by their rules.") % {"tags": ", ".join(kept)}
                    ]})
        exclusive = {}
        for tag_id in add:
            group = tags[tag_id].group
            if group.exclusive:
                if group.pk in exclusive:
                    raise TaggingError({"add": [
                        _("%(group)s holds one tag per member; choose one of its tags.") % {"group": group.name}
                    ]})
                exclusive[group.pk] = tag_id
        member_ids = members.order_by().values("pk")
        removed = 0
        if remove:
            removed += _log_and_delete(
                tenant, MemberTag.objects.filter(tag_id__in=remove, member_id__in=member_ids), source, staff, at
            )
        for group_id, tag_id in exclusive.items():
            others = MemberTag.objects.filter(group_id=group_id, member_id__in=member_ids).exclude(tag_id=tag_id)
            removed += _log_and_delete(tenant, others, source, staff, at)
        added = sum(_log_and_insert(tenant, tags[tag_id], members, source, staff, at) for tag_id in add)
    return {"added": added, "removed": removed}


# ---------------------------------------------------------------- automatic tags

def _desired_sql(group, tags, ctx, member_ids):
    """SQL and params of the (mid, tid) pairs the group's rules give, as one query: a CASE for an
    exclusive group (the first matching tag by position wins), a UNION ALL of one query per tag
    otherwise. None when no tag has a rule."""
    if not tags:
        return None
    base = Member.objects.all()
    if member_ids is not None:
        base = base.filter(pk__in=member_ids)
    rules = [(tag, compile_tree(parse(tag.rule, path=f"tags[{tag.pk}].rule"), ctx)) for tag in tags]
    if group.exclusive:
        whens = [When(q, then=Value(tag.pk)) for tag, q in rules]
        queries = [base.annotate(tid=Case(*whens, default=None, output_field=IntegerField())).filter(tid__isnull=False)]
    else:
        queries = [base.filter(q).annotate(tid=Value(tag.pk, output_field=IntegerField())) for tag, q in rules]
    parts = [_sql(query.order_by().values("tid", mid=F("pk"))) for query in queries]
    return " UNION ALL ".join(sql for sql, _params in parts), [p for _sql_, params in parts for p in params]


def _full_join():
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 39)
    return True


def _diff_sql(desired, held):
    """(mid, tid, held_id): the desired pairs not held (held_id NULL) and the held rows not desired
    (mid and tid NULL), worked out in one pass over both sets where the database has FULL JOIN."""
    if desired is None:
        return f"SELECT NULL AS mid, NULL AS tid, h.id AS held_id, h.member_id AS held_mid, h.tag_id AS held_tid FROM ({held}) h"
    if _full_join():
        return (
            f"SELECT d.mid AS mid, d.tid AS tid, h.id AS held_id, h.member_id AS held_mid, h.tag_id AS held_tid "
            f"FROM ({desired}) d FULL OUTER JOIN ({held}) h ON h.member_id = d.mid AND h.tag_id = d.tid "
            f"WHERE d.mid IS NULL OR h.id IS NULL"
        )
    return (
        f"SELECT d.mid AS mid, d.tid AS tid, NULL AS held_id, NULL AS held_mid, NULL AS held_tid FROM ({desired}) d "
        f"WHERE NOT EXISTS (SELECT 1 FROM ({held}) h WHERE h.member_id = d.mid AND h.tag_id = d.tid) "
        f"UNION ALL SELECT NULL, NULL, h.id, h.member_id, h.tag_id FROM ({held}) h "
        f"WHERE NOT EXISTS (SELECT 1 FROM ({desired}) d WHERE d.mid = h.member_id AND d.tid = h.tag_id)"
    )


def _sync(tenant, group, tags, ctx, scope_ids, at):
    """Make the group's MemberTag rows equal what its rules give: logged removals, then logged
    additions. The difference between the desired pairs and the held rows is worked out once, in
    one statement, into a temporary table holding only what changes; the writes read that."""
    desired = _desired_sql(group, tags, ctx, scope_ids)
    held = (
        f"SELECT mt.id AS id, mt.member_id AS member_id, mt.tag_id AS tag_id FROM {_table(MemberTag)} mt "
        f"WHERE mt.tenant_id = %s AND mt.group_id = %s"
    )
    held_params = [tenant.pk, group.pk]
    if scope_ids is not None:
        held += f" AND mt.member_id IN ({', '.join(['%s'] * len(scope_ids))})"
        held_params += list(scope_ids)
    desired_sql, desired_params = desired if desired else (None, [])
    if desired is None:
        params = held_params
    elif _full_join():
        params = [*desired_params, *held_params]
    else:
        params = [*desired_params, *held_params, *held_params, *desired_params]
    auto = TagSource.AUTOMATIC
    log = f"INSERT INTO {_table(TagChange)} (tenant_id, member_id, tag_id, action, source, staff_id, at) "
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS tagging_diff")
        cursor.execute(f"CREATE TEMPORARY TABLE tagging_diff AS {_diff_sql(desired_sql, held)}", params)
        cursor.execute(
            f"{log} SELECT %s, held_mid, held_tid, %s, %s, NULL, %s FROM tagging_diff WHERE held_id IS NOT NULL",
            [tenant.pk, TagChange.Action.REMOVED, auto, at],
        )
        cursor.execute(
            f"DELETE FROM {_table(MemberTag)} WHERE id IN (SELECT held_id FROM tagging_diff WHERE held_id IS NOT NULL)"
        )
        removed = cursor.rowcount
        cursor.execute(
            f"{log} SELECT %s, mid, tid, %s, %s, NULL, %s FROM tagging_diff WHERE held_id IS NULL",
            [tenant.pk, TagChange.Action.ADDED, auto, at],
        )
        cursor.execute(
            f"INSERT INTO {_table(MemberTag)} (tenant_id, member_id, tag_id, group_id, source, added_by_id, added_at) "
            f"SELECT %s, mid, tid, %s, %s, NULL, %s FROM tagging_diff WHERE held_id IS NULL "
            f"ON CONFLICT (tenant_id, member_id, tag_id) DO NOTHING",
            [tenant.pk, group.pk, auto, at],
        )
        added = cursor.rowcount
        cursor.execute("DROP TABLE tagging_diff")
    return added, removed


# Members per statement of an incremental refresh; each tag's query names them, so fewer when a
# group has many tags (the databases bound the parameters of one statement).
REFRESH_PARAMS = 30_000
REFRESH_CHUNK = 5000


def refresh_automatic_tags(tenant, as_of, member_ids=None, group_ids=None):
    """Re-evaluate the rules of automatic groups over all members, or only ``member_ids``: a tag
    that now holds is added, one that no longer holds is removed, each change logged.
    Returns {"added": n, "removed": n, "groups": n}."""
    ctx = Context(as_of=as_of, zone=tenant.zone)
    groups = TagGroup.objects.filter(kind=TagGroup.Kind.AUTOMATIC)
    if group_ids is not None:
        groups = groups.filter(pk__in=group_ids)
    totals = {"added": 0, "removed": 0, "groups": 0}
    ids = sorted(set(member_ids)) if member_ids is not None else None
    for group in groups:
        with transaction.atomic():
            group = TagGroup.objects.select_for_update().get(pk=group.pk)
            tags = list(Tag.objects.filter(group=group).exclude(rule__isnull=True).order_by("position", "pk"))
            if not Tag.objects.filter(group=group).exists():
                continue
            scopes = [None]
            if ids is not None:
                size = max(1, min(REFRESH_CHUNK, REFRESH_PARAMS // (len(tags) + 1)))
                scopes = [ids[i:i + size] for i in range(0, len(ids), size)]
            for scope in scopes:
                added, removed = _sync(tenant, group, tags, ctx, scope, as_of)
                totals["added"] += added
                totals["removed"] += removed
            group.refreshed_at = as_of
            group.save(update_fields=["refreshed_at"])
            totals["groups"] += 1
    return totals


# ---------------------------------------------------------------- segments

def check_segment_rules(rules, segment=None):
    """Validate a tree for saving: path-named errors, and no segment that contains itself."""
    parse(rules)
    if segment is not None and segment.pk:
        seen, queue = {segment.pk}, referenced_segments(rules)
        while queue:
            current = queue.pop()
            if current in seen:
                raise ConditionError({"rules": [_("A segment cannot contain itself, directly or through others.")]})
            seen.add(current)
            inner = Segment.objects.filter(pk=current).values_list("rules", flat=True).first()
            queue.extend(referenced_segments(inner or {}))
    return rules


def members_matching(tenant, rules, as_of, members=None):
    """The members a tree selects at ``as_of``, as a lazy queryset (one SQL query)."""
    ctx = Context(as_of=as_of, zone=tenant.zone)
    base = members if members is not None else Member.objects.all()
    return base.filter(compile_tree(parse(rules), ctx))


def segment_members(segment, as_of, members=None):
    return members_matching(segment.tenant, segment.rules, as_of, members)


def count_segment(segment, as_of, members=None):
    """Count a segment's members now and remember the figure for the segment list."""
    count = segment_members(segment, as_of, members).count()
    if members is None:
        Segment.objects.filter(pk=segment.pk).update(last_count=count, last_evaluated_at=as_of)
        segment.last_count, segment.last_evaluated_at = count, as_of
    return count


@transaction.atomic
def save_segment(tenant, data, segment=None, staff=None):
    segment = segment or Segment(tenant=tenant, created_by=staff)
    if "rules" in data:
        check_segment_rules(data["rules"], segment)
    for field in ("name", "description", "rules"):
        if field in data:
            setattr(segment, field, data[field])
    segment.save()
    return segment


@transaction.atomic
def delete_segment(segment):
    """Delete a segment no other segment or tag rule names."""
    users = [s.name for s in Segment.objects.exclude(pk=segment.pk) if segment.pk in referenced_segments(s.rules)]
    users += [t.name for t in Tag.objects.exclude(rule__isnull=True) if segment.pk in referenced_segments(t.rule)]
    if users:
        raise TaggingError({"segment": [_("Used by %(names)s; change those first.") % {"names": ", ".join(users)}]})
    segment.delete()


@transaction.atomic
def take_snapshot(segment, as_of, staff=None):
    """Freeze the segment's member list at ``as_of`` with one INSERT … SELECT."""
    snapshot = SegmentSnapshot.objects.create(
        tenant=segment.tenant, segment=segment, rules=segment.rules, taken_at=as_of, created_by=staff
    )
    sql, params = _members_sql(segment_members(segment, as_of))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(SnapshotMember)} (tenant_id, snapshot_id, member_id) SELECT %s, %s, m.mid FROM ({sql}) m",
            [segment.tenant_id, snapshot.pk, *params],
        )
        snapshot.member_count = cursor.rowcount
    snapshot.save(update_fields=["member_count"])
    return snapshot


def snapshot_members(snapshot, members=None):
    base = members if members is not None else Member.objects.all()
    return base.filter(pk__in=SnapshotMember.objects.filter(snapshot=snapshot).values("member_id"))
