"""Dashboard pages of the lifecycle: the overview with charts, and the stage rules with a dry run."""
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.views import staff_required

from . import queries, services
from .forms import LifecycleFilterForm, StageRulesForm
from .models import RULE_DEFAULTS, STAGE_ORDER, LifecycleRun, StageRulesVersion

TREND_DAYS = 90
RECENT_RUNS = 8
RULE_HELP = {
    "dormant_after_days": _("A member who has ordered becomes dormant after this many days without an order."),
    "churn_after_days": _("…and churned after this many days without an order."),
    "mature_min_orders": _("Orders in the last 365 days that make a member mature."),
    "intro_churn_days": _("A member who never ordered is churned this many days after joining."),
    "warning_days": _("Growth and maturity members get the churn warning after this many days without an order."),
    "aov_drop_pct": _("…or when they ordered at most once in 90 days and their average order value fell by this much (%) against the 90–365 days before."),
}


@staff_required
def overview(request):
    tenant, staff = request.tenant, request.staff
    form = LifecycleFilterForm(request.GET or None, staff=staff)
    today = services.reporting_day(tenant, timezone.now())
    since, until = form.period(today)
    store_id, guide_id = form.selected("store_id"), form.selected("guide_id")
    summary = queries.summary(tenant, staff, store_id, guide_id)
    flows = queries.transitions(tenant, since, until, staff, store_id, guide_id)
    funnel = queries.funnel(tenant, since, until, staff, store_id, guide_id)
    trend = queries.trend(tenant, today - timedelta(days=TREND_DAYS - 1), today, staff, store_id, guide_id)
    labels = {stage.value: str(stage.label) for stage in STAGE_ORDER}
    charts = {
        "labels": labels,
        "stages": [{"stage": s["stage"], "count": s["count"], "warning": s["warning"]} for s in summary["stages"]],
        "trend": [{**row, "day": row["day"].isoformat()} for row in trend],
        "flows": flows["flows"],
        "entered": flows["entered"],
        "funnel": [{"stage": s["stage"], "count": s["count"]} for s in funnel["steps"]],
        "text": {
            "members": _("Members"), "warning": _("With churn warning"), "new": _("New members"),
            "no_data": _("No data yet"),
        },
    }
    matrix_rows = [
        {"stage": labels[a.value], "cells": [flows["matrix"][a.value][b.value] for b in STAGE_ORDER]} for a in STAGE_ORDER
    ]
    context = {
        "form": form,
        "since": since,
        "until": until,
        "summary": summary,
        "flows": flows,
        "funnel": funnel,
        "charts": charts,
        "stage_labels": [labels[s.value] for s in STAGE_ORDER],
        "matrix_rows": matrix_rows,
        "entered_total": sum(flows["entered"].values()),
    }
    return render(request, "lifecycle/overview.html", context)


@staff_required
def rules(request):
    tenant, staff = request.tenant, request.staff
    current = services.current_rules(tenant)
    may_change = staff.can_manage_settings
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied(_("Only owners and operators may change the stage rules."))
        form = StageRulesForm(request.POST, instance=services.current_rules(tenant))
        if request.POST.get("action") == "dry_run":
            preview = services.dry_run(tenant, {f: form.cleaned_data[f] for f in RULE_DEFAULTS}) if form.is_valid() else None
            if request.headers.get("HX-Request"):
                return render(request, "lifecycle/_dry_run.html", {"form": form, "preview": preview})
            return _rules_page(request, form, current, preview=preview, dry_run=True)
        if form.is_valid():
            expected = _int(request.POST.get("version"))
            try:
                _rules, changed = services.update_rules(
                    tenant, {f: form.cleaned_data[f] for f in RULE_DEFAULTS}, changed_by=staff, expected_version=expected
                )
            except services.RulesConflict:
                messages.error(request, _("Someone changed the rules meanwhile; here are their values. Check and save again."))
                return redirect("lifecycle:rules")
            if changed:
                messages.success(request, _("Rules saved. The next nightly run re-scores every member under them."))
            else:
                messages.info(request, _("Nothing changed."))
            return redirect("lifecycle:rules")
    else:
        form = StageRulesForm(instance=current)
    return _rules_page(request, form, current)


def _rules_page(request, form, current, preview=None, dry_run=False):
    rows = [
        {"field": form[field], "default": default, "help": RULE_HELP[field]} for field, default in RULE_DEFAULTS.items()
    ]
    context = {
        "form": form,
        "rows": rows,
        "rules": current,
        "may_change": request.staff.can_manage_settings,
        "versions": [
            {"version": v, "diff": [(k, v.previous.get(k), new) for k, new in v.values.items() if v.previous.get(k) != new]}
            for v in StageRulesVersion.objects.order_by("-version")[:20]
        ],
        "runs": LifecycleRun.objects.order_by("-id")[:RECENT_RUNS],
        "preview": preview,
        "dry_run": dry_run,
    }
    return render(request, "lifecycle/rules.html", context)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
