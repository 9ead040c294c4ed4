"""Read-only figures of campaigns and tasks, shared by the dashboard and the API."""
import math
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    Count, DateTimeField, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum, Value,
)
from django.db.models.functions import Coalesce
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from members.models import Event, EventType, Order
from tagging.models import MemberTag

from .models import Enrolment, GuideTask, Message, StepRun
from .services import CONTROL, outreach_settings

Z = 1.96  # two-sided 95%


def _window_start():
    return Coalesce(OuterRef("first_touch_at"), OuterRef("enrolled_at"))


def _annotated(enrolments, attribution_days):
    """Each enrolment with replied / converted flags and attributed sales. Conversion counts an order
    within the attribution window after the first touch (after enrolment for the untouched and the
    control group, so the arms compare like with like)."""
    window = timedelta(days=attribution_days)
    start = _window_start()
    end = ExpressionWrapper(start + Value(window), output_field=DateTimeField())
    orders = Order.objects.filter(
        member_id=OuterRef("member_id"), placed_at__gte=start, placed_at__lt=end,
    ).exclude(status=Order.Status.REFUNDED)
    sales = orders.order_by().values("member_id").annotate(
        s=Sum(F("total") - F("refunded_amount"), output_field=DecimalField(max_digits=14, decimal_places=2))
    ).values("s")
    replied = Exists(GuideTask.objects.filter(
        enrolment_id=OuterRef("pk"), status__in=(GuideTask.Status.REPLIED, GuideTask.Status.BOUGHT)
    )) | Exists(Event.objects.filter(
        member_id=OuterRef("member_id"), type=EventType.MESSAGE_REPLIED, occurred_at__gte=OuterRef("first_touch_at"),
    ))
    return enrolments.annotate(
        replied=replied, converted=Exists(orders),
        sales=Coalesce(Subquery(sales), Value(Decimal("0")), output_field=DecimalField(max_digits=14, decimal_places=2)),
    )


def funnel(campaigns, attribution_days):
    """{campaign id: {enrolled, touched, replied, converted, sales}} for a queryset of campaigns."""
    rows = _annotated(Enrolment.objects.filter(campaign__in=campaigns), attribution_days)
    figures = rows.values("campaign_id").annotate(
        enrolled=Count("pk"), touched=Count("pk", filter=Q(first_touch_at__isnull=False)),
        n_replied=Count("pk", filter=Q(replied=True)), n_converted=Count("pk", filter=Q(converted=True)),
        n_sales=Sum("sales"),
    )
    return {
        r["campaign_id"]: {"enrolled": r["enrolled"], "touched": r["touched"], "replied": r["n_replied"],
                           "converted": r["n_converted"], "sales": r["n_sales"] or Decimal("0")}
        for r in figures
    }


def uplift(converted, n, control_converted, control_n):
    """Difference of conversion rates over the control with a 95% Wald interval, in percentage points."""
    if not n or not control_n:
        return None
    p, q = converted / n, control_converted / control_n
    se = math.sqrt(p * (1 - p) / n + q * (1 - q) / control_n)
    diff = p - q
    return {"diff": round(100 * diff, 2), "low": round(100 * (diff - Z * se), 2), "high": round(100 * (diff + Z * se), 2)}


def campaign_results(campaign, tenant):
    """Per variant (and the control): the funnel, conversion rate, uplift over control and a verdict."""
    settings = outreach_settings(tenant)
    rows = _annotated(Enrolment.objects.filter(campaign=campaign), settings.attribution_days)
    arms = list(rows.values("variant").annotate(
        enrolled=Count("pk"), touched=Count("pk", filter=Q(first_touch_at__isnull=False)),
        n_replied=Count("pk", filter=Q(replied=True)), n_converted=Count("pk", filter=Q(converted=True)),
        n_sales=Sum("sales"),
    ).order_by("variant"))
    control = next((a for a in arms if a["variant"] == CONTROL), None)
    labels = {v["key"]: v.get("label") or v["key"] for v in campaign.variants}
    result = []
    for arm in arms:
        key = arm["variant"]
        row = {
            "variant": key, "label": _("Control") if key == CONTROL else labels.get(key, key or _("Everyone")),
            "enrolled": arm["enrolled"], "touched": arm["touched"], "replied": arm["n_replied"],
            "converted": arm["n_converted"], "sales": arm["n_sales"] or Decimal("0"),
            "rate": round(100 * arm["n_converted"] / arm["enrolled"], 2) if arm["enrolled"] else 0,
            "uplift": None,
        }
        if control is not None and key != CONTROL:
            row["uplift"] = uplift(arm["n_converted"], arm["enrolled"], control["n_converted"], control["enrolled"])
        result.append(row)
    return {"arms": result, "verdict": verdict(result), "attribution_days": settings.attribution_days}


def verdict(arms):
    """A plain sentence: a variant wins when it converts better than the control and than every
    other variant, each difference with a 95% interval above zero; otherwise there is no winner yet."""
    tested = [a for a in arms if a["uplift"] is not None]
    if not tested:
        return _("No control group: uplift cannot be measured.") if arms else _("Nobody enrolled yet.")
    best = max(tested, key=lambda a: a["uplift"]["diff"])
    beats_others = all(
        uplift(best["converted"], best["enrolled"], other["converted"], other["enrolled"])["low"] > 0
        for other in tested if other is not best
    )
    if best["uplift"]["low"] > 0 and beats_others:
        return _("%(label)s wins: %(diff)s points more conversion than the control (95%% interval %(low)s to %(high)s).") % {
            "label": best["label"], **best["uplift"],
        }
    return _("No clear winner yet: the intervals overlap or include zero.")


def step_outcomes(campaign):
    """Per step: done, held and skipped, with the reasons."""
    rows = StepRun.objects.filter(campaign=campaign).values("step_id", "status", "reason").annotate(n=Count("pk"))
    by_step = {}
    for r in rows:
        by_step.setdefault(r["step_id"], []).append(r)
    return by_step


# ---------------------------------------------------------------- tasks

def day_bounds(tenant, as_of):
    local = as_of.astimezone(tenant.zone)
    start = datetime.combine(local.date(), time(0), tzinfo=tenant.zone)
    return start, start + timedelta(days=1)


def task_counts(tasks, tenant, as_of):
    start, end = day_bounds(tenant, as_of)
    return tasks.aggregate(
        open=Count("pk", filter=Q(status=GuideTask.Status.OPEN) & (Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=as_of))),
        overdue=Count("pk", filter=Q(status=GuideTask.Status.OPEN, due_at__lt=as_of)),
        done_today=Count("pk", filter=Q(done_at__gte=start, done_at__lt=end) & ~Q(status=GuideTask.Status.OPEN)),
        snoozed=Count("pk", filter=Q(status=GuideTask.Status.OPEN, snoozed_until__gt=as_of)),
    )


def member_tags(member_ids):
    """{member id: the member's tags as badges, by name} for the members on one task list. Flat
    rows rather than MemberTag and Tag objects, and each distinct tag's badge made once: a list of
    200 members holds a few thousand tags but only a few dozen distinct ones."""
    badges, held = {}, {}
    rows = MemberTag.objects.filter(member_id__in=member_ids).order_by("tag__name", "tag_id")
    for member_id, tag_id, name, colour in rows.values_list("member_id", "tag_id", "tag__name", "tag__colour"):
        if tag_id not in badges:
            badges[tag_id] = format_html('<span class="badge rounded-pill me-1" style="background:{}">{}</span>', colour, name)
        held.setdefault(member_id, []).append(badges[tag_id])
    return {member_id: mark_safe("".join(row)) for member_id, row in held.items()}


def guide_table(tasks, tenant, as_of):
    """Per guide: open, overdue, done today, and completion of all tasks so far."""
    start, end = day_bounds(tenant, as_of)
    return tasks.values("guide_id", "guide__name", "guide__active").annotate(
        total=Count("pk"),
        open=Count("pk", filter=Q(status=GuideTask.Status.OPEN)),
        overdue=Count("pk", filter=Q(status=GuideTask.Status.OPEN, due_at__lt=as_of)),
        done_today=Count("pk", filter=Q(done_at__gte=start, done_at__lt=end) & ~Q(status=GuideTask.Status.OPEN)),
        done=Count("pk", filter=~Q(status=GuideTask.Status.OPEN)),
    ).order_by("guide__name")


def outbox_counts():
    return dict(Message.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
