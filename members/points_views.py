"""Dashboard pages of points and tiers: rules and tier settings, tiers, member days, a member's
ledger with manual adjustment."""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.views import settings_required, staff_required

from . import points
from .models import MemberDay, PointsEntry, PointsRules, Tier, TierSettings
from .queries import visible_members

LEDGER_PAGE = 50


class PointsRulesForm(forms.ModelForm):
    class Meta:
        model = PointsRules
        fields = ["points_per_yuan", "sign_in_points", "streak_days", "streak_bonus", "expiry"]


class TierSettingsForm(forms.ModelForm):
    class Meta:
        model = TierSettings
        fields = ["basis", "hold_days"]


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = ["name", "rank", "threshold", "benefits"]
        widgets = {"benefits": forms.Textarea(attrs={"rows": 3})}

    def clean_rank(self):
        rank = self.cleaned_data["rank"]
        others = Tier.objects.filter(rank=rank).exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(_("Another tier has this rank."))
        return rank


class MemberDayForm(forms.ModelForm):
    class Meta:
        model = MemberDay
        fields = ["name", "day_of_month", "weekday", "benefits", "active"]
        widgets = {"benefits": forms.Textarea(attrs={"rows": 2})}

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("day_of_month") is None and cleaned.get("weekday") is None:
            self.add_error("day_of_month", _("Give a day of the month or a weekday."))
        return cleaned


class AdjustForm(forms.Form):
    points = forms.IntegerField(label=gettext_lazy("Points"), help_text=gettext_lazy("Negative to deduct."))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)


@settings_required
def points_settings(request):
    tenant = request.tenant
    rules_form = PointsRulesForm(request.POST if request.POST.get("form") == "rules" else None, instance=points.rules_for(tenant), prefix="rules")
    tier_form = TierSettingsForm(
        request.POST if request.POST.get("form") == "tiers" else None, instance=points.tier_settings_for(tenant), prefix="tiers"
    )
    for form in (rules_form, tier_form):
        if form.is_bound and form.is_valid():
            saved = form.save(commit=False)
            saved.tenant = tenant
            saved.save()
            messages.success(request, _("Settings saved."))
            return redirect("members:points_settings")
    return render(request, "members/points_settings.html", {
        "rules_form": rules_form, "tier_form": tier_form,
        "tiers": Tier.objects.order_by("rank"), "member_days": MemberDay.objects.order_by("name"),
        "next_member_day": points.next_member_day(tenant, tenant.local_now().date()),
    })


def _edit(request, model, form_class, pk, title):
    obj = get_object_or_404(model, pk=pk) if pk else None
    form = form_class(request.POST or None, instance=obj)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.tenant = request.tenant
        saved.save()
        messages.success(request, _("%(name)s saved.") % {"name": saved.name})
        return redirect("members:points_settings")
    return render(request, "members/points_form.html", {"form": form, "object": obj, "title": title})


@settings_required
def tier_edit(request, pk=None):
    return _edit(request, Tier, TierForm, pk, _("Tier"))


@settings_required
def member_day_edit(request, pk=None):
    return _edit(request, MemberDay, MemberDayForm, pk, _("Member day"))


@staff_required
def member_points(request, pk):
    """A member's ledger; owners and operators adjust it here with a reason."""
    member = get_object_or_404(visible_members(request.staff), pk=pk)
    can_adjust = request.staff.can_manage_settings
    form = AdjustForm(request.POST or None)
    if request.method == "POST":
        if not can_adjust:
            raise PermissionDenied(_("Only owners and operators may adjust points."))
        if form.is_valid():
            try:
                points.adjust_points(
                    request.tenant, member.pk, form.cleaned_data["points"], reason=form.cleaned_data["reason"],
                    as_of=timezone.now(), staff=request.staff,
                )
            except points.PointsError as error:
                form.add_error("points", error.message)
            else:
                messages.success(request, _("Points adjusted."))
                return redirect("members:points", pk=member.pk)
    entries = PointsEntry.objects.filter(member=member).select_related("order", "created_by")
    page = Paginator(entries, LEDGER_PAGE).get_page(request.GET.get("page"))
    return render(request, "members/points_ledger.html", {
        "member": member, "page": page, "form": form, "can_adjust": can_adjust,
        "balance": points.balance_of(request.tenant, member.pk),
    })
