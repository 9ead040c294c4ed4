"""Dashboard pages of coupons: templates, issue, search, the clerk's redeem form, results."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from members.queries import visible_members
from scrm.views import staff_required

from . import queries, services
from .filters import CouponFilterSet
from .forms import CouponTemplateForm, IssueForm, RedeemForm
from .models import Coupon, CouponTemplate

PAGE_SIZE = 50


def _operators_only(request):
    if not request.staff.can_manage_settings:
        raise PermissionDenied(_("Only owners and operators may change coupons."))


@staff_required
def template_list(request):
    templates = CouponTemplate.objects.prefetch_related("stores").order_by("-active", "-created_at")
    return render(request, "coupons/templates.html", {"templates": templates})


@staff_required
def template_edit(request, pk=None):
    _operators_only(request)
    template = get_object_or_404(CouponTemplate, pk=pk) if pk else None
    form = CouponTemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.tenant = request.tenant
        saved.save()
        form.save_m2m()
        messages.success(request, _("Coupon template %(name)s saved.") % {"name": saved.name})
        return redirect("coupons:templates")
    return render(request, "coupons/template_form.html", {"form": form, "template": template})


@staff_required
def issue(request, pk):
    """Issue to members named in a list: the first submit counts, the second issues."""
    _operators_only(request)
    template = get_object_or_404(CouponTemplate, pk=pk)
    form = IssueForm(request.POST or None)
    counts = result = None
    if request.method == "POST" and form.is_valid():
        members = form.cleaned_data["members"]
        if request.POST.get("confirm") == "1":
            try:
                result = services.issue_coupons(
                    request.tenant, template, members, as_of=timezone.now(), source=Coupon.Source.MANUAL,
                    issued_by=request.staff,
                )
            except services.CouponError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("%(n)d coupons issued.") % {"n": result.issued})
        else:
            counts = services.count_issuable(request.tenant, template, members)
    template.refresh_from_db()
    return render(request, "coupons/issue.html", {"form": form, "template": template, "counts": counts, "result": result})


@staff_required
def coupon_search(request):
    coupons = Coupon.objects.select_related("template", "member")
    if not request.staff.sees_all_members:
        coupons = coupons.filter(member__in=visible_members(request.staff))
    filterset = CouponFilterSet(request.GET or None, queryset=coupons.order_by("-issued_at", "-pk"))
    searched = bool(request.GET)
    page = Paginator(filterset.qs if searched else coupons.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "coupons/search.html", {"filterset": filterset, "page": page, "searched": searched})


@staff_required
def redeem(request):
    """The store clerk's form (phone-sized): code, order number, amount; answers success or why not."""
    form = RedeemForm(request.POST or None, staff=request.staff)
    outcome = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            redemption = services.redeem_coupon(
                request.tenant, data["code"], order_external_id=data["order_external_id"], amount=data["amount"],
                as_of=timezone.now(), store=data["store"], guide=request.staff, categories=data["categories"],
            )
        except services.CouponError as error:
            outcome = {"ok": False, "code": error.code, "message": error.message}
        else:
            outcome = {"ok": True, "coupon": redemption.coupon, "replayed": redemption.replayed}
            form = RedeemForm(staff=request.staff)
    return render(request, "coupons/redeem.html", {"form": form, "outcome": outcome})


@staff_required
def results(request):
    _operators_only(request)
    group_by = request.GET.get("group_by", "template")
    if group_by not in queries.GROUPS:
        group_by = "template"
    rows = queries.coupon_results(request.tenant, group_by)
    chart = {
        "labels": [str(row["label"]) for row in rows],
        "issued": [row["issued"] for row in rows],
        "redeemed": [row["redeemed"] for row in rows],
        "rate": [float(row["redemption_rate"] * 100) for row in rows],
        "names": {"issued": _("Issued"), "redeemed": _("Redeemed"), "rate": _("Redemption rate (%)")},
    }
    return render(request, "coupons/results.html", {
        "rows": rows, "totals": queries.totals(rows), "group_by": group_by, "chart": chart,
        "groups": [("template", _("Template")), ("campaign", _("Campaign")), ("store", _("Store")), ("guide", _("Guide"))],
    })
