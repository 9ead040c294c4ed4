"""Dashboard pages of campaigns, the guide's task list (/guide/), the store's tasks and the outbox."""
from collections import OrderedDict

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members.models import Member
from scrm.models import Staff
from scrm.views import settings_required, staff_required
from tagging.services import count_segment

from . import delivery, queries, services
from .forms import CampaignForm, HandoverForm, OutreachSettingsForm, StepFormSet
from .models import Campaign, GuideTask, Message, OutreachSettings, StepRun

OUTBOX_PAGE = 50


# ---------------------------------------------------------------- campaigns

@settings_required
def campaign_list(request):
    campaigns = list(Campaign.objects.prefetch_related("steps"))
    settings = services.outreach_settings(request.tenant)
    figures = queries.funnel(Campaign.objects.all(), settings.attribution_days)
    for campaign in campaigns:
        campaign.figures = figures.get(campaign.pk, {"enrolled": 0, "touched": 0, "replied": 0, "converted": 0})
    return render(request, "campaigns/list.html", {"campaigns": campaigns, "tab": "campaigns"})


@settings_required
def campaign_edit(request, pk=None):
    campaign = get_object_or_404(Campaign, pk=pk) if pk else Campaign(tenant=request.tenant, created_by=request.staff)
    form = CampaignForm(request.POST or None, instance=campaign)
    steps = StepFormSet(request.POST or None, instance=campaign, prefix="steps")
    if request.method == "POST" and form.is_valid():
        # The steps check their variant against the campaign's variants as just entered.
        campaign.variants = form.cleaned_data["variants_text"]
        if steps.is_valid():
            with transaction.atomic():
                saved = form.save()
                steps.instance = saved
                steps.save()
            messages.success(request, _("Campaign %(name)s saved.") % {"name": saved.name})
            return redirect("campaigns:detail", pk=saved.pk)
    return render(request, "campaigns/form.html", {"form": form, "steps": steps, "campaign": campaign, "tab": "campaigns"})


@settings_required
def audience_count(request):
    """The live count of the builder: members in the audience now (htmx)."""
    form = CampaignForm(request.GET or None)
    form.is_valid()
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    probe = Campaign(
        tenant=request.tenant, segment=data.get("segment"), audience_stages=list(data.get("audience_stages") or []),
        audience_tags=[t.pk for t in data.get("audience_tags") or []],
        audience_stores=[s.pk for s in data.get("audience_stores") or []],
    )
    count = services.audience(probe, Member.objects.all(), timezone.now()).count()
    return HttpResponse(
        _("%(n)s members in the audience now") % {"n": f"{count:,}"}, content_type="text/plain; charset=utf-8"
    )


@settings_required
def campaign_detail(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("segment"), pk=pk)
    results = queries.campaign_results(campaign, request.tenant)
    outcomes = queries.step_outcomes(campaign)
    steps = list(campaign.steps.all())
    for step in steps:
        step.outcomes = [
            {**row, "label": StepRun.Status(row["status"]).label,
             "reason_label": StepRun.Reason(row["reason"]).label if row["reason"] else ""}
            for row in outcomes.get(step.pk, [])
        ]
    return render(request, "campaigns/detail.html", {
        "campaign": campaign, "results": results, "steps": steps, "tab": "campaigns",
        "segment_count": count_segment(campaign.segment, timezone.now()) if campaign.segment_id else None,
    })


@settings_required
@require_POST
def campaign_status(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    status = request.POST.get("status")
    if status not in Campaign.Status.values:
        raise Http404
    if status == Campaign.Status.ACTIVE and not campaign.steps.exists():
        messages.error(request, _("Add a step before starting the campaign."))
    else:
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        messages.success(request, _("%(name)s is now %(status)s.") % {
            "name": campaign.name, "status": Campaign.Status(status).label,
        })
    return redirect("campaigns:detail", pk=campaign.pk)


# ---------------------------------------------------------------- the guide's task list

# What a card shows of the task's member, coupon and campaign: their other columns (many of them
# timestamps) would only be read and converted for 200 cards a page.
_CARD_FIELDS = (
    "member__name", "member__external_id", "member__lifecycle__stage", "member__lifecycle__churn_warning",
    "member__lifecycle__last_order_at", "member__lifecycle__favourite_category", "coupon__code",
    "coupon__template__name", "campaign__name",
)
# Stands for a task's id in an address reversed once per page and filled in per card.
_ANY_TASK = 2147483647


def _task_rows(tasks):
    """The tasks as cards: each with its member's tags (from one flat query) and its form
    addresses (one reverse() per page; 200 cards would reverse 1,200 times)."""
    tasks = list(tasks.select_related("member", "member__lifecycle", "coupon", "coupon__template", "campaign").only(
        *(f.attname for f in GuideTask._meta.concrete_fields), *_CARD_FIELDS
    ))
    tags = queries.member_tags({task.member_id for task in tasks})
    outcome, snooze = (reverse(name, args=[_ANY_TASK]) for name in ("guide:outcome", "guide:snooze"))
    for task in tasks:
        pk = str(task.pk)
        task.tags = tags.get(task.member_id, "")
        task.outcome_url = outcome.replace(str(_ANY_TASK), pk)
        task.snooze_url = snooze.replace(str(_ANY_TASK), pk)
    return tasks


def card_labels():
    """The words every task card repeats, translated once per page rather than once per card."""
    return {
        "due": _("due"), "warning": _("Warning"), "last_order": _("Last order"), "none_yet": _("None yet"),
        "favourite": _("Favourite category"), "coupon": _("Coupon to send"), "copy": _("Copy script"),
        "copied": _("Copied"), "sent": _("Sent"), "replied": _("Replied"), "bought": _("Bought"),
        "unreachable": _("Not reachable"), "skip_or_snooze": _("Skip or snooze"), "reason": _("Reason"),
        "why_skip": _("Why skip?"), "skip": _("Skip"), "in_2h": _("In 2 hours"), "tomorrow": _("Tomorrow 10:00"),
        "snoozed_until": _("Snoozed until"),
    }


def _groups(tasks, tenant, now):
    """Overdue first, then today's by part of the day, then later."""
    start, end = queries.day_bounds(tenant, now)
    groups = OrderedDict((key, []) for key in ("overdue", "morning", "afternoon", "evening", "later"))
    for task in tasks:
        local = timezone.localtime(task.due_at, tenant.zone)
        if task.due_at < now:
            groups["overdue"].append(task)
        elif task.due_at >= end:
            groups["later"].append(task)
        elif local.hour < 12:
            groups["morning"].append(task)
        elif local.hour < 18:
            groups["afternoon"].append(task)
        else:
            groups["evening"].append(task)
    labels = {"overdue": _("Overdue"), "morning": _("Due this morning"), "afternoon": _("Due this afternoon"),
              "evening": _("Due this evening"), "later": _("Coming up")}
    return [(key, labels[key], rows) for key, rows in groups.items() if rows]


@staff_required
def guide_today(request):
    if request.staff.role != Staff.Role.GUIDE:
        return redirect("campaigns:tasks")
    now = timezone.now()
    mine = GuideTask.objects.filter(guide=request.staff)
    open_tasks = _task_rows(
        mine.filter(status=GuideTask.Status.OPEN).filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
        .order_by("due_at", "pk")[:300]
    )
    return render(request, "campaigns/guide.html", {
        "groups": _groups(open_tasks, request.tenant, now), "counts": queries.task_counts(mine, request.tenant, now),
        "now": now, "labels": card_labels(),
    })


def _own_task(request, pk):
    task = get_object_or_404(services.visible_tasks(request.staff), pk=pk)
    if request.staff.role == Staff.Role.GUIDE and task.guide_id != request.staff.pk:
        raise Http404
    return task


def _card(request, task, note=""):
    (task,) = _task_rows(GuideTask.objects.filter(pk=task.pk))
    return render(request, "campaigns/_task_card.html", {
        "task": task, "now": timezone.now(), "note": note, "labels": card_labels(),
    })


@staff_required
@require_POST
def task_outcome(request, pk):
    task = _own_task(request, pk)
    try:
        services.record_outcome(task, request.POST.get("outcome", ""), timezone.now(), request.POST.get("reason", ""))
    except services.CampaignError as exc:
        note = " ".join(m for messages_ in exc.errors.values() for m in messages_)
        if request.headers.get("HX-Request"):
            return _card(request, task, note)
        messages.error(request, note)
        return redirect("guide:today")
    if request.headers.get("HX-Request"):
        return _card(request, task)
    return redirect("guide:today")


@staff_required
@require_POST
def task_snooze(request, pk):
    task = _own_task(request, pk)
    now = timezone.now()
    choice = services.snooze_choices(request.tenant, now).get(request.POST.get("until", ""))
    if choice is None:
        raise Http404
    services.snooze(task, choice, now)
    if request.headers.get("HX-Request"):
        return _card(request, task)
    return redirect("guide:today")


# ---------------------------------------------------------------- store tasks and handover

def _store_guides(staff):
    guides = Staff.objects.filter(role=Staff.Role.GUIDE)
    if staff.sees_all_members:
        return guides
    return guides.filter(stores__in=staff.stores.all()).distinct()


@staff_required
def store_tasks(request):
    staff = request.staff
    if staff.role == Staff.Role.GUIDE:
        return redirect("guide:today")
    now = timezone.now()
    guides = _store_guides(staff)
    tasks = services.visible_tasks(staff)
    guide_id = request.GET.get("guide_id")
    listed = None
    if guide_id and guide_id.isdigit():
        listed = _task_rows(tasks.filter(guide_id=int(guide_id), status=GuideTask.Status.OPEN).order_by("due_at")[:200])
    return render(request, "campaigns/store_tasks.html", {
        "rows": queries.guide_table(tasks, request.tenant, now), "counts": queries.task_counts(tasks, request.tenant, now),
        "handover": HandoverForm(guides=guides), "listed": listed, "guide_id": guide_id, "now": now,
        "labels": card_labels(), "tab": "tasks",
    })


@staff_required
@require_POST
def handover(request):
    if request.staff.role == Staff.Role.GUIDE:
        raise PermissionDenied(_("Only store managers and operators hand members over."))
    form = HandoverForm(request.POST, guides=_store_guides(request.staff))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("campaigns:tasks")
    try:
        moved = services.hand_over(request.tenant, form.cleaned_data["leaving"], form.cleaned_data["to_guide"], timezone.now())
    except services.CampaignError as exc:
        for errors in exc.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("campaigns:tasks")
    messages.success(request, _("%(members)d members and %(tasks)d open tasks of %(from)s now belong to %(to)s.") % {
        **moved, "from": form.cleaned_data["leaving"].name, "to": form.cleaned_data["to_guide"].name,
    })
    return redirect("campaigns:tasks")


# ---------------------------------------------------------------- outbox and settings

@settings_required
def outbox(request):
    status = request.GET.get("status", "")
    listed = Message.objects.select_related("campaign").order_by("-created_at", "-pk")
    if status in Message.Status.values:
        listed = listed.filter(status=status)
    counts = queries.outbox_counts()
    return render(request, "campaigns/outbox.html", {
        "messages_": listed[:OUTBOX_PAGE], "status": status, "tab": "outbox",
        "statuses": [(value, label, counts.get(value, 0)) for value, label in Message.Status.choices],
    })


@settings_required
@require_POST
def message_retry(request, pk):
    message = get_object_or_404(Message, pk=pk)
    if delivery.retry_message(message, timezone.now()):
        from .tasks import deliver_messages

        transaction.on_commit(lambda: deliver_messages.delay(request.tenant.pk))
        messages.success(request, _("Message queued again."))
    return redirect(request.POST.get("next") or "campaigns:outbox")


@settings_required
def outreach_settings(request):
    instance = OutreachSettings.objects.filter(tenant=request.tenant).first() or OutreachSettings(tenant=request.tenant)
    form = OutreachSettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Outreach settings saved."))
        return redirect("campaigns:settings")
    return render(request, "campaigns/settings.html", {"form": form, "tab": "settings"})

