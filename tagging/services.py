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

def _desired(group, tags, ctx, member_ids):
    """(member id, tag id) pairs the group's rules give, as one query."""
    base = Member.objects.all()
    if member_ids is not None:
        base = base.filter(pk__in=member_ids)
    if group.exclusive:
        whens = [When(compile_tree(parse(tag.rule, path=f"tags[{tag.pk}].rule"), ctx), then=Value(tag.pk)) for tag in tags]
        return [base.annotate(tid=Case(*whens, default=None, output_field=IntegerField())).filter(tid__isnull=False)]
    return [
        base.filter(compile_tree(parse(tag.rule, path=f"tags[{tag.pk}].rule"), ctx)).annotate(
            tid=Value(tag.pk, output_field=IntegerField())
        )
        for tag in tags
    ]


def _sync(tenant, group, desired, scope_ids, at, tag_ids):
    """Make the group's MemberTag rows equal ``desired``: logged removals, then logged additions.
    The desired pairs are worked out once into a temporary table that the four statements join."""
    d_sql, d_params = _sql(desired.order_by().values("tid", mid=F("pk")))
    mt = _table(MemberTag)
    scope, scope_params = "", []
    if scope_ids is not None:
        scope = f" AND mt.member_id IN ({', '.join(['%s'] * len(scope_ids))})"
        scope_params = list(scope_ids)
    tags_in = ", ".join(["%s"] * len(tag_ids))
    stale = (
        f"FROM {mt} mt WHERE mt.tenant_id = %s AND mt.group_id = %s AND mt.tag_id IN ({tags_in}){scope} "
        f"AND NOT EXISTS (SELECT 1 FROM tagging_desired d WHERE d.mid = mt.member_id AND d.tid = mt.tag_id)"
    )
    stale_params = [tenant.pk, group.pk, *tag_ids, *scope_params]
    fresh = (
        f"FROM tagging_desired d WHERE NOT EXISTS (SELECT 1 FROM {mt} mt "
        f"WHERE mt.tenant_id = %s AND mt.member_id = d.mid AND mt.tag_id = d.tid)"
    )
    fresh_params = [tenant.pk]
    auto = TagSource.AUTOMATIC
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS tagging_desired")
        cursor.execute(f"CREATE TEMPORARY TABLE tagging_desired AS {d_sql}", d_params)
        # An index keeps the anti-joins cheap even when the planner's row estimates lag behind a
        # bulk change (a nested loop over an unindexed temporary table would be quadratic).
        cursor.execute("CREATE INDEX tagging_desired_pair ON tagging_desired (mid, tid)")
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE tagging_desired")
        cursor.execute(
            f"INSERT INTO {_table(TagChange)} (tenant_id, member_id, tag_id, action, source, staff_id, at) "
            f"SELECT %s, mt.member_id, mt.tag_id, %s, %s, NULL, %s {stale}",
            [tenant.pk, TagChange.Action.REMOVED, auto, at, *stale_params],
        )
        cursor.execute(f"DELETE FROM {mt} WHERE id IN (SELECT mt.id {stale})", stale_params)
        removed = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {_table(TagChange)} (tenant_id, member_id, tag_id, action, source, staff_id, at) "
            f"SELECT %s, d.mid, d.tid, %s, %s, NULL, %s {fresh}",
            [tenant.pk, TagChange.Action.ADDED, auto, at, *fresh_params],
        )
        cursor.execute(
            f"INSERT INTO {mt} (tenant_id, member_id, tag_id, group_id, source, added_by_id, added_at) "
            f"SELECT %s, d.mid, d.tid, %s, %s, NULL, %s {fresh} ON CONFLICT (tenant_id, member_id, tag_id) DO NOTHING",
            [tenant.pk, group.pk, auto, at, *fresh_params],
        )
        added = cursor.rowcount
        cursor.execute("DROP TABLE tagging_desired")
    return added, removed


REFRESH_CHUNK = 5000


def _nobody():
    # Ids are positive: a query that selects no member yet still compiles to SQL.
    return Member.objects.filter(pk__lt=0).annotate(tid=Value(0, output_field=IntegerField()))


def refresh_automatic_tags(tenant, as_of, member_ids=None, group_ids=None):
    """Re-evaluate the rules of automatic groups over all members, or only ``member_ids``: a tag
    that now holds is added, one that no longer holds is removed, each change logged.
    Returns {"added": n, "removed": n, "groups": n}."""
    ctx = Context(as_of=as_of, zone=tenant.zone)
    groups = TagGroup.objects.filter(kind=TagGroup.Kind.AUTOMATIC)
    if group_ids is not None:
        groups = groups.filter(pk__in=group_ids)
    totals = {"added": 0, "removed": 0, "groups": 0}
    scopes = [None]
    if member_ids is not None:
        ids = sorted(set(member_ids))
        scopes = [ids[i:i + REFRESH_CHUNK] for i in range(0, len(ids), REFRESH_CHUNK)]
    for group in groups:
        with transaction.atomic():
            group = TagGroup.objects.select_for_update().get(pk=group.pk)
            tags = list(Tag.objects.filter(group=group).exclude(rule__isnull=True).order_by("position", "pk"))
            all_tag_ids = list(Tag.objects.filter(group=group).values_list("pk", flat=True))
            if not all_tag_ids:
                continue
            for scope in scopes:
                desired_sets = _desired(group, tags, ctx, scope) if tags else []
                if group.exclusive or not tags:
                    pairs = [(desired_sets[0] if desired_sets else _nobody(), all_tag_ids)]
                else:
                    pairs = [(desired, [tag.pk]) for desired, tag in zip(desired_sets, tags)]
                    ruled = {tag.pk for tag in tags}
                    ruleless = [pk for pk in all_tag_ids if pk not in ruled]
                    if ruleless:
                        pairs.append((_nobody(), ruleless))
                for desired, tag_ids in pairs:
                    added, removed = _sync(tenant, group, desired, scope, as_of, tag_ids)
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
