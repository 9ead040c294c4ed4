"""Ingestion of members, orders and events: batched, idempotent by external id, and set-based;
and ``reassign_guide``, which moves members to another guide for every app above (handover).

Every ingestion function takes already-validated items as ``[(index, data)]`` (index = position in the
caller's input) and returns ``(outcomes, errors)`` keyed by that index, so that the API, the CSV
import and the demo seeding answer per item in input order.
"""
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ContactStatus, Event, EventType, Member, Order, OrderLine
from .signals import activity_recorded, members_changed

MEMBER_FIELDS = (
    "name", "mobile", "gender", "birthday", "city", "joined_at", "source_channel",
    "home_store", "owner_guide", "wecom_external_userid", "contact_status", "attributes",
)
# Besides external_id, each of these names at most one member of a brand.
IDENTITY_FIELDS = ("mobile", "wecom_external_userid")
ORDER_FIELDS = (
    "member_external_id", "mobile", "store", "guide", "placed_at", "status", "total", "discount", "refunded_amount",
)
LINE_FIELDS = ("sku", "name", "category", "quantity", "unit_price", "amount")


def _dedupe(items, key):
    """Later repeats of the same key in one batch are errors: the batch must say one thing."""
    seen, unique, errors = set(), [], {}
    for index, data in items:
        value = data[key]
        if value in seen:
            errors[index] = {key: [_("Appears more than once in this batch.")]}
        else:
            seen.add(value)
            unique.append((index, data))
    return unique, errors


def _fire_after_commit(signal, tenant, member_ids):
    ids = sorted({pk for pk in member_ids if pk is not None})
    if ids:
        transaction.on_commit(lambda: signal.send(sender=Member, tenant_id=tenant.pk, member_ids=ids))


def _with_retry(work):
    """Run ``work`` in a savepoint; on a unique violation from a concurrent writer, run it again
    once: the second attempt sees the other writer's rows and updates them instead."""
    try:
        with transaction.atomic():
            return work()
    except IntegrityError:
        with transaction.atomic():
            return work()


# ---------------------------------------------------------------- members

def upsert_members(tenant, items):
    items, errors = _dedupe(items, "external_id")

    wanted = {field: set() for field in IDENTITY_FIELDS}
    for index, data in items:
        for field in IDENTITY_FIELDS:
            value = data.get(field)
            if not value:
                continue
            if value in wanted[field]:
                errors.setdefault(index, {})[field] = [_("Appears more than once in this batch.")]
            wanted[field].add(value)
    items = [(i, d) for i, d in items if i not in errors]

    def work():
        outcomes = {}
        local_errors = {}
        external_ids = [data["external_id"] for _i, data in items]
        existing = {m.external_id: m for m in Member.objects.filter(tenant=tenant, external_id__in=external_ids)}
        owners = {
            field: dict(
                Member.objects.filter(tenant=tenant, **{f"{field}__in": values}).values_list(field, "external_id")
            )
            for field, values in wanted.items() if values
        }
        now = timezone.now()
        to_create, to_update, update_fields, rebind = [], [], set(), []
        for index, data in items:
            taken = _taken_identities(data, owners)
            if taken:
                local_errors[index] = taken
                continue
            member = existing.get(data["external_id"])
            if member is None:
                member = Member(tenant=tenant, external_id=data["external_id"], joined_at=data.get("joined_at") or now)
                _apply(member, data, MEMBER_FIELDS)
                if member.contact_status != ContactStatus.ACTIVE:
                    member.contact_status_changed_at = now
                to_create.append(member)
                outcomes[index] = ("created", member)
                continue
            changed = _apply(member, data, MEMBER_FIELDS)
            if not changed:
                outcomes[index] = ("unchanged", member)
                continue
            if "contact_status" in changed:
                member.contact_status_changed_at = now
                changed.add("contact_status_changed_at")
            if "mobile" in changed:
                rebind.append(member)
            member.updated_at = now
            update_fields |= changed | {"updated_at"}
            to_update.append(member)
            outcomes[index] = ("updated", member)
        Member.objects.bulk_create(to_create, batch_size=1000)
        if to_update:
            Member.objects.bulk_update(to_update, sorted(update_fields), batch_size=500)
        bind_orders(tenant, [m.pk for m in to_create + rebind])
        return outcomes, local_errors

    outcomes, more_errors = _with_retry(work) if items else ({}, {})
    errors.update(more_errors)
    _fire_after_commit(members_changed, tenant, [m.pk for status, m in outcomes.values() if status != "unchanged"])
    return (
        {i: {"id": m.pk, "external_id": m.external_id, "status": status} for i, (status, m) in outcomes.items()},
        errors,
    )


def _taken_identities(data, owners):
    """Field errors for a mobile or WeCom external user id that another member of the brand holds."""
    errors = {}
    for field in IDENTITY_FIELDS:
        value = data.get(field)
        owner = owners.get(field, {}).get(value) if value else None
        if owner is None or owner == data["external_id"]:
            continue
        if field == "mobile":
            errors[field] = [_("Already belongs to member %(id)s.") % {"id": owner}]
        else:
            errors[field] = [_("This WeCom external user id already belongs to member %(id)s.") % {"id": owner}]
    return errors


def _apply(obj, data, fields):
    """Set the given fields that differ; return the names of those that changed.

    A foreign key is compared by its id: reading ``order.store`` would load the store, one query
    per row of a batch."""
    changed = set()
    for field in fields:
        if field not in data:
            continue
        value = data[field]
        model_field = obj._meta.get_field(field)
        if model_field.many_to_one:
            current = getattr(obj, model_field.attname)
            differs = current != (value.pk if value is not None else None)
        else:
            differs = getattr(obj, field) != value
        if differs:
            setattr(obj, field, value)
            changed.add(field)
    return changed


def bind_orders(tenant, member_ids):
    """Order binding (订单关联): attach waiting orders to the members that now exist, first by the
    member's external id, then by mobile. Set-based: two UPDATE ... = (subquery) statements."""
    if not member_ids:
        return 0
    members = Member.objects.filter(tenant=tenant, pk__in=member_ids)
    external_ids = list(members.values_list("external_id", flat=True))
    mobiles = list(members.exclude(mobile__isnull=True).values_list("mobile", flat=True))
    waiting = Order.objects.filter(tenant=tenant, member__isnull=True)
    now = timezone.now()
    count = waiting.filter(member_external_id__in=external_ids).update(
        member_id=Subquery(
            Member.objects.filter(tenant=tenant, external_id=OuterRef("member_external_id")).values("pk")[:1]
        ),
        updated_at=now,
    )
    if mobiles:
        count += waiting.filter(mobile__in=mobiles).update(
            member_id=Subquery(Member.objects.filter(tenant=tenant, mobile=OuterRef("mobile")).values("pk")[:1]),
            updated_at=now,
        )
    if count:
        touched = Order.objects.filter(tenant=tenant, member_id__in=member_ids, updated_at=now).values_list(
            "member_id", flat=True
        )
        _fire_after_commit(activity_recorded, tenant, set(touched))
    return count


# ---------------------------------------------------------------- guides

REASSIGN_CHUNK = 5000


def reassign_guide(tenant, members, guide, *, as_of):
    """Make ``guide`` (a Staff of ``tenant``, or None for no guide) the guide of ``members`` (a
    queryset of members or an iterable of member ids). Set-based: one read of the ids whose guide
    changes, then UPDATEs in chunks of ids that also move ``updated_at``; the members_changed
    signal follows the commit. Returns the number of members whose guide changed."""
    if guide is not None and guide.tenant_id != tenant.pk:
        raise ValueError("the guide belongs to another brand")
    chosen = Member.objects.filter(tenant=tenant)
    chosen = chosen.filter(pk__in=members.values("pk") if isinstance(members, QuerySet) else list(members))
    with transaction.atomic():
        ids = list(chosen.exclude(owner_guide=guide).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), REASSIGN_CHUNK):
            Member.objects.filter(tenant=tenant, pk__in=ids[start:start + REASSIGN_CHUNK]).update(
                owner_guide=guide, updated_at=as_of
            )
    _fire_after_commit(members_changed, tenant, ids)
    return len(ids)


# ---------------------------------------------------------------- orders

def ingest_orders(tenant, items):
    items, errors = _dedupe(items, "external_id")

    def work():
        outcomes = {}
        external_ids = [data["external_id"] for _i, data in items]
        existing = {o.external_id: o for o in Order.objects.filter(tenant=tenant, external_id__in=external_ids)}
        existing_lines = {}
        if existing:
            for line in OrderLine.objects.filter(tenant=tenant, order_id__in=[o.pk for o in existing.values()]).order_by("pk"):
                existing_lines.setdefault(line.order_id, []).append(tuple(getattr(line, f) for f in LINE_FIELDS))
        members = _resolve_members(tenant, [data for _i, data in items])
        now = timezone.now()
        to_create, to_update, update_fields = [], [], set()
        new_lines, replace_lines_for = {}, []
        touched = set()
        for index, data in items:
            data = dict(data)
            lines = data.pop("lines", None)
            order = existing.get(data["external_id"])
            member = members.get(("ext", data.get("member_external_id"))) or members.get(("mobile", data.get("mobile")))
            if order is None:
                order = Order(tenant=tenant, external_id=data["external_id"], member=member)
                _apply(order, data, ORDER_FIELDS)
                to_create.append(order)
                new_lines[index] = lines or []
                outcomes[index] = ("created", order)
                touched.add(member.pk if member else None)
                continue
            changed = _apply(order, data, ORDER_FIELDS)
            if order.member_id is None and member is not None:
                order.member = member
                changed.add("member")
            if lines is not None:
                wanted = [tuple(line.get(f, _line_default(f)) for f in LINE_FIELDS) for line in lines]
                if wanted != existing_lines.get(order.pk, []):
                    replace_lines_for.append(order.pk)
                    new_lines[index] = lines
                    changed.add("lines")
            if not changed:
                outcomes[index] = ("unchanged", order)
                continue
            order.updated_at = now
            update_fields |= (changed - {"lines"}) | {"updated_at"}
            to_update.append(order)
            outcomes[index] = ("updated", order)
            touched.add(order.member_id)
        Order.objects.bulk_create(to_create, batch_size=1000)
        if to_update:
            Order.objects.bulk_update(to_update, sorted(update_fields), batch_size=500)
        if replace_lines_for:
            OrderLine.objects.filter(tenant=tenant, order_id__in=replace_lines_for).delete()
        OrderLine.objects.bulk_create(
            [
                OrderLine(tenant=tenant, order=outcomes[index][1], **{f: line.get(f, _line_default(f)) for f in LINE_FIELDS})
                for index, lines in new_lines.items()
                for line in lines
            ],
            batch_size=2000,
        )
        return outcomes, touched

    if not items:
        return {}, errors
    outcomes, touched = _with_retry(work)
    _fire_after_commit(activity_recorded, tenant, touched)
    return (
        {
            i: {"id": o.pk, "external_id": o.external_id, "status": status, "member_id": o.member_id}
            for i, (status, o) in outcomes.items()
        },
        errors,
    )


def _line_default(field):
    return {"name": "", "category": "", "quantity": 1}.get(field)


def _resolve_members(tenant, datas):
    external_ids = {d["member_external_id"] for d in datas if d.get("member_external_id")}
    mobiles = {d["mobile"] for d in datas if d.get("mobile")}
    found = {}
    if external_ids:
        for member in Member.objects.filter(tenant=tenant, external_id__in=external_ids).only("pk", "external_id"):
            found[("ext", member.external_id)] = member
    if mobiles:
        for member in Member.objects.filter(tenant=tenant, mobile__in=mobiles).only("pk", "mobile"):
            found[("mobile", member.mobile)] = member
    return found


def normalise_refund(data):
    """Keep status and refunded amount consistent: a full refund refunds the total."""
    status = data.get("status")
    total = data.get("total")
    refunded = data.get("refunded_amount")
    if status == Order.Status.REFUNDED and not refunded and total is not None:
        data["refunded_amount"] = total
    elif status is None and refunded and total is not None:
        data["status"] = Order.Status.REFUNDED if refunded >= total else Order.Status.PARTIALLY_REFUNDED
    return data


# ---------------------------------------------------------------- events

CONTACT_EVENTS = {
    EventType.CONTACT_DELETED: ContactStatus.DELETED_BY_CUSTOMER,
    EventType.CONTACT_ADDED: ContactStatus.ACTIVE,
}


def ingest_events(tenant, items):
    with_ids = [(i, d) for i, d in items if d.get("external_id")]
    without_ids = [(i, d) for i, d in items if not d.get("external_id")]
    with_ids, errors = _dedupe(with_ids, "external_id")
    items = sorted(with_ids + without_ids, key=lambda pair: pair[0])
    member_map = dict(
        Member.objects.filter(
            tenant=tenant, external_id__in={d["member_external_id"] for _i, d in items}
        ).values_list("external_id", "pk")
    )
    ready = []
    for index, data in items:
        member_pk = member_map.get(data["member_external_id"])
        if member_pk is None:
            errors[index] = {"member_external_id": [_("No member with this external id.")]}
        else:
            ready.append((index, data, member_pk))
    if not ready:
        return {}, errors

    def work():
        outcomes = {}
        known = dict(
            Event.objects.filter(
                tenant=tenant, external_id__in=[d["external_id"] for _i, d, _m in ready if d.get("external_id")]
            ).values_list("external_id", "pk")
        )
        to_create = []
        for index, data, member_pk in ready:
            if data.get("external_id") in known:
                outcomes[index] = {"id": known[data["external_id"]], "external_id": data["external_id"], "status": "unchanged"}
                continue
            event = Event(
                tenant=tenant, member_id=member_pk, type=data["type"], occurred_at=data["occurred_at"],
                properties=data.get("properties") or {}, external_id=data.get("external_id") or None,
            )
            to_create.append((index, event))
        Event.objects.bulk_create([event for _i, event in to_create], batch_size=1000)
        for index, event in to_create:
            outcomes[index] = {"id": event.pk, "external_id": event.external_id, "status": "created"}
        _apply_contact_events(tenant, [event for _i, event in to_create])
        return outcomes, {event.member_id for _i, event in to_create}

    outcomes, touched = _with_retry(work)
    _fire_after_commit(activity_recorded, tenant, touched)
    return outcomes, errors


def _apply_contact_events(tenant, events):
    """contact_deleted / contact_added move the member's contact status, newest event wins."""
    latest = {}
    for event in events:
        if event.type in CONTACT_EVENTS:
            current = latest.get(event.member_id)
            if current is None or event.occurred_at > current.occurred_at:
                latest[event.member_id] = event
    if not latest:
        return
    members = Member.objects.filter(tenant=tenant, pk__in=list(latest)).only("pk", "contact_status", "contact_status_changed_at")
    changed = []
    for member in members:
        event = latest[member.pk]
        if member.contact_status_changed_at and member.contact_status_changed_at > event.occurred_at:
            continue
        member.contact_status = CONTACT_EVENTS[event.type]
        member.contact_status_changed_at = event.occurred_at
        member.updated_at = timezone.now()
        changed.append(member)
    Member.objects.bulk_update(changed, ["contact_status", "contact_status_changed_at", "updated_at"])
    _fire_after_commit(members_changed, tenant, [m.pk for m in changed])


# ---------------------------------------------------------------- figures

def bind_rate(tenant):
    """Share of orders that are bound to a member (0..1), and the counts."""
    total = Order.objects.filter(tenant=tenant).count()
    bound = Order.objects.filter(tenant=tenant, member__isnull=False).count()
    return {"orders": total, "bound": bound, "rate": (Decimal(bound) / total) if total else Decimal(0)}
