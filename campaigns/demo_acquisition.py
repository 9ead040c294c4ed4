"""The demo brand's live codes and their history, so that the acquisition results and the churn
alerts have something to show on a fresh ``make run``.

``install_demo_acquisition(tenant, as_of)`` creates a few live codes at the demo stores (cashier,
door sign, display island, parcel card, SMS link, mini-program), each with a cost and a pool of the
stores' guides; records a join for the demo members who joined in the last 60 days through a
channel one of the codes stands for, and for some older members who added a guide through one; writes landing views per day; and lets some of those
members delete their guide again (parcel-card gift hunters leave soonest), plus one guide who lost
several contacts yesterday. Rows are written in bulk; once the history is there, running it again
adds nothing.
"""
import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import CharField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat

from members.models import ContactStatus, Event, EventType, Member
from members.signals import activity_recorded
from scrm.models import Staff, Store

from .models import LiveCode, LiveCodeDay, LiveCodeGuide, LiveCodeJoin

HISTORY_DAYS = 60
BATCH = 1000
# (name, channel type, store position in code order or None, cost, member source channels, views per join,
#  share of joiners who delete the guide within days)
CODES = [
    ("南京西路店 收银台活码", LiveCode.ChannelType.STORE_CASHIER, 0, Decimal("300.00"), ("store_qr",), 2.2, 0.06),
    ("三里屯店 门贴活码", LiveCode.ChannelType.DOOR_SIGN, 2, Decimal("180.00"), ("store_qr", "poster"), 3.0, 0.08),
    ("湖滨银泰店 岛台活码", LiveCode.ChannelType.STORE_ISLAND, 4, Decimal("150.00"), ("island_counter", "store_qr"), 2.5, 0.07),
    ("天猫旗舰店 包裹卡", LiveCode.ChannelType.PARCEL_CARD, None, Decimal("1800.00"), ("parcel_card",), 10.0, 0.22),
    ("会员召回短信链接", LiveCode.ChannelType.SMS, None, Decimal("900.00"), ("sms_link",), 14.0, 0.12),
    ("小程序 入会页", LiveCode.ChannelType.ONLINE, None, None, ("mini_program", "livestream", "referral"), 4.0, 0.05),
]
MASS_LOSS = 6
EXISTING_SHARE = 0.3


def _codes(tenant, stores, guides_of, online_pool):
    made = []
    for name, channel, store_at, cost, _channels, _views, _leave in CODES:
        store = stores[store_at] if store_at is not None and store_at < len(stores) else None
        code, created = LiveCode.objects.get_or_create(name=name, defaults={
            "tenant": tenant, "channel_type": channel, "store": store, "cost": cost,
            "welcome_message": "{name}您好，我是{store}的{guide}，欢迎加入！新客礼券 {coupon_code} 已放入您的账户。",
            "daily_cap": 80, "reassign_existing": False,
        })
        if created:
            pool = guides_of.get(store.pk, []) if store else online_pool
            LiveCodeGuide.objects.bulk_create([
                LiveCodeGuide(tenant=tenant, live_code=code, guide_id=guide_id, position=i) for i, guide_id in enumerate(pool)
            ])
        made.append(code)
    return made


def _pick_code(codes, channel, store_id):
    """The store's own code for an in-store channel; otherwise the brand-wide code of the channel."""
    fallback = None
    for code, spec in zip(codes, CODES):
        if channel not in spec[4]:
            continue
        if code.store_id is not None and code.store_id == store_id:
            return code, spec
        if code.store_id is None and fallback is None:
            fallback = (code, spec)
    return fallback or (None, None)


@transaction.atomic
def install_demo_acquisition(tenant, as_of, seed=7):
    """Create the demo live codes and their history in ``tenant`` (inside its tenant_context).
    Returns {"codes", "joins", "view_days", "deleted"}."""
    rnd = random.Random(seed)
    stores = list(Store.objects.filter(active=True).order_by("code"))
    guides_of = {}
    for store_id, guide_id in Staff.objects.filter(role=Staff.Role.GUIDE, active=True, stores__isnull=False).order_by(
        "pk"
    ).values_list("stores", "pk"):
        guides_of.setdefault(store_id, []).append(guide_id)
    online_pool = [g for s in stores[:2] for g in guides_of.get(s.pk, [])]
    codes = _codes(tenant, stores, guides_of, online_pool)

    if LiveCodeJoin.objects.filter(key__startswith="demo:").exists():
        return {"codes": len(codes), "joins": 0, "view_days": 0, "deleted": 0}
    since = as_of - timedelta(days=HISTORY_DAYS)
    # New members who joined lately, and some long-standing members who added a guide through a code.
    candidates = Member.objects.filter(joined_at__lte=as_of).filter(
        Q(joined_at__gte=since) | Q(contact_status=ContactStatus.ACTIVE)
    ).order_by("pk").values_list("pk", "source_channel", "home_store_id", "owner_guide_id", "joined_at", "contact_status")
    joins, leaving = [], []
    for member_id, channel, store_id, guide_id, joined_at, status in candidates.iterator(chunk_size=BATCH):
        new = joined_at >= since
        if not new and rnd.random() >= EXISTING_SHARE:
            continue
        code, spec = _pick_code(codes, channel, store_id)
        if code is None:
            continue
        at = joined_at if new else since + (as_of - since) * rnd.random()
        joins.append(LiveCodeJoin(
            tenant=tenant, live_code=code, member_id=member_id, guide_id=guide_id, store_id=store_id or code.store_id,
            door=LiveCodeJoin.Door.WECOM if code.store_id else LiveCodeJoin.Door.LANDING, key=f"demo:{member_id}",
            new_member=new, joined_at=at,
        ))
        left_after = timedelta(hours=rnd.randint(6, 20 * 24))
        if status == ContactStatus.ACTIVE and rnd.random() < spec[6] and at + left_after < as_of:
            leaving.append((member_id, guide_id, at + left_after))
    LiveCodeJoin.objects.bulk_create(joins, batch_size=BATCH, ignore_conflicts=True)

    view_days = _views(tenant, codes, as_of, rnd)
    leaving += _mass_loss(as_of, {m for m, *_rest in leaving}, rnd)
    deleted = _delete(tenant, leaving)
    return {"codes": len(codes), "joins": len(joins), "view_days": view_days, "deleted": deleted}


def _views(tenant, codes, as_of, rnd):
    """Landing views per code and local day: the joins of the day times the code's views per join,
    with some noise and a floor, because a printed code is scanned even on days nobody joins."""
    joined = {}
    for code_id, day in LiveCodeJoin.objects.filter(live_code__in=codes).values_list("live_code_id", "joined_at"):
        key = (code_id, day.astimezone(tenant.zone).date())
        joined[key] = joined.get(key, 0) + 1
    today = as_of.astimezone(tenant.zone).date()
    rows = []
    for code, spec in zip(codes, CODES):
        per_join = spec[5]
        for back in range(HISTORY_DAYS):
            day = today - timedelta(days=back)
            views = round(joined.get((code.pk, day), 0) * per_join * rnd.uniform(0.8, 1.25)) + rnd.randint(0, 3)
            rows.append(LiveCodeDay(tenant=tenant, live_code=code, day=day, views=views))
    LiveCodeDay.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return len(rows)


def _mass_loss(as_of, taken, rnd):
    """One guide with several active contacts deletes-by-customer yesterday, for the alert banner."""
    yesterday = as_of - timedelta(days=1)
    busiest = (
        Member.objects.filter(contact_status=ContactStatus.ACTIVE, owner_guide__isnull=False, joined_at__lt=yesterday)
        .exclude(owner_guide__user__username="guide")
        .values_list("owner_guide_id", flat=True).order_by("owner_guide_id").first()
    )
    if busiest is None:
        return []
    ids = list(
        Member.objects.filter(contact_status=ContactStatus.ACTIVE, owner_guide_id=busiest, joined_at__lt=yesterday)
        .exclude(pk__in=taken).order_by("pk").values_list("pk", flat=True)[:MASS_LOSS]
    )
    start = yesterday.replace(hour=10, minute=0, second=0, microsecond=0)
    return [(pk, busiest, start + timedelta(minutes=rnd.randint(0, 8 * 60))) for pk in ids]


def _delete(tenant, leaving):
    """The customer deleted the guide: the contact_deleted event and the contact status, as the
    WeCom callback records them. Members already deleted keep their first deletion."""
    if not leaving:
        return 0
    userids = dict(Staff.objects.filter(pk__in={g for _m, g, _t in leaving if g}).values_list("pk", "wecom_userid"))
    Event.objects.bulk_create([
        Event(tenant=tenant, member_id=member_id, type=EventType.CONTACT_DELETED, occurred_at=at,
              properties={"userid": userids.get(guide_id) or "", "by": "customer"}, external_id=f"demo-left-{member_id}")
        for member_id, guide_id, at in leaving
    ], batch_size=BATCH, ignore_conflicts=True)
    ids = [member_id for member_id, _guide, _at in leaving]
    deleted_at = Event.objects.filter(
        member_id=OuterRef("pk"), type=EventType.CONTACT_DELETED, external_id=Concat(Value("demo-left-"), Cast(OuterRef("pk"), CharField())),
    ).values("occurred_at")[:1]
    deleted = Member.objects.filter(pk__in=ids, contact_status=ContactStatus.ACTIVE).update(
        contact_status=ContactStatus.DELETED_BY_CUSTOMER, contact_status_changed_at=Subquery(deleted_at),
    )
    transaction.on_commit(lambda: activity_recorded.send(sender=Member, tenant_id=tenant.pk, member_ids=ids))
    return deleted
