"""Dashboard pages of channel live codes (渠道活码): the list, the form, a code's page, its QR image
and its printable card.

Owners and operators manage codes. A store manager sees, downloads and prints the codes of their
own stores without changing them. Guides have no part in these pages.
"""
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.models import Staff, Store
from scrm.views import settings_required, staff_required

from . import acquisition, qr
from .livecode_filters import LiveCodeFilterSet
from .livecode_forms import LiveCodeFilterForm, LiveCodeForm
from .models import LiveCode, LiveCodeDay, LiveCodeGuide, LiveCodeGuideDay, LiveCodeJoin
from .queries import day_bounds

PAGE_SIZE = 50
RECENT_JOINS = 20
PAPERS = ("a6", "a5")


def _codes_for(staff):
    if staff.can_manage_settings:
        return LiveCode.objects.all()
    if staff.role == Staff.Role.STORE_MANAGER:
        return LiveCode.objects.filter(store__in=staff.stores.all())
    raise PermissionDenied(_("Live codes are managed by operators and store managers."))


def _stores_for(staff):
    if staff.can_manage_settings:
        return Store.objects.order_by("code")
    return staff.stores.order_by("code")


def _pool_prefetch():
    return Prefetch("pool", queryset=LiveCodeGuide.objects.select_related("guide").order_by("position", "pk"))


@staff_required
def live_code_list(request):
    now = timezone.now()
    today, _end = day_bounds(request.tenant, now)
    week = today - timedelta(days=6)
    form = LiveCodeFilterForm(request.GET or None, stores=_stores_for(request.staff))
    # The API's FilterSet does the filtering, so a list filtered here and through the API agree.
    codes = _codes_for(request.staff)
    if not request.GET.get("status"):
        codes = codes.exclude(status=LiveCode.Status.ARCHIVED)
    codes = LiveCodeFilterSet(request.GET, queryset=codes).qs.select_related("store", "fixed_guide").prefetch_related(
        _pool_prefetch()
    ).annotate(
        # distinct: a filter through the pool (guide_id) joins rows that would count a join twice.
        joins_today=Count("joins", filter=Q(joins__joined_at__gte=today), distinct=True),
        joins_week=Count("joins", filter=Q(joins__joined_at__gte=week), distinct=True),
    ).order_by("store__code", "name", "pk")
    page = Paginator(codes, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "campaigns/livecodes/list.html", {
        "page": page, "codes": page.object_list, "filter_form": form, "query": query.urlencode(),
        "can_manage": request.staff.can_manage_settings,
    })


def _form_context(form, live_code):
    return {
        "form": form, "live_code": live_code, "pool_choices": form.pool_choices(),
        "variables": ["{name}", "{guide}", "{store}", "{coupon_code}"],
    }


def _save(request, form, live_code):
    """Save through the acquisition service; its field errors land on the form's fields.

    The service gets the code as stored, not the form's instance (which validation has already
    changed), so it can tell what changed behind the printed code and resync WeCom."""
    stored = LiveCode.objects.get(pk=live_code.pk) if live_code else None
    try:
        return acquisition.save_live_code(
            request.tenant, dict(form.cleaned_data), live_code=stored, by=request.staff, as_of=timezone.now()
        )
    except acquisition.AcquisitionError as exc:
        for field, problems in (getattr(exc, "errors", None) or {"__all__": [str(exc)]}).items():
            for problem in problems if isinstance(problems, (list, tuple)) else [problems]:
                form.add_error(field if field in form.fields else None, problem)
        return None


@settings_required
def live_code_edit(request, pk=None):
    live_code = get_object_or_404(LiveCode, pk=pk) if pk else None
    form = LiveCodeForm(request.POST or None, instance=live_code)
    if request.method == "POST" and form.is_valid():
        saved = _save(request, form, live_code)
        if saved is not None:
            messages.success(request, _("Live code %(name)s saved.") % {"name": saved.name})
            return redirect("campaigns:live_code_detail", pk=saved.pk)
    return render(request, "campaigns/livecodes/form.html", _form_context(form, live_code))


@staff_required
def live_code_detail(request, pk):
    live_code = get_object_or_404(
        _codes_for(request.staff).select_related("store", "fixed_guide", "backup_guide", "welcome_coupon")
        .prefetch_related(_pool_prefetch(), "tags"),
        pk=pk,
    )
    now = timezone.now()
    today, _end = day_bounds(request.tenant, now)
    local_day = today.date()
    taken = dict(
        LiveCodeGuideDay.objects.filter(live_code=live_code, day=local_day).values_list("guide_id", "joins")
    )
    pool = []
    for entry in live_code.pool.all():
        joins = taken.get(entry.guide_id, 0)
        pool.append({
            "guide": entry.guide, "joins": joins,
            "full": bool(live_code.daily_cap and joins >= live_code.daily_cap),
            "share": min(100, round(100 * joins / live_code.daily_cap)) if live_code.daily_cap else None,
        })
    figures = LiveCodeJoin.objects.filter(live_code=live_code).aggregate(
        today=Count("pk", filter=Q(joined_at__gte=today)),
        week=Count("pk", filter=Q(joined_at__gte=today - timedelta(days=6))),
        total=Count("pk"),
    )
    figures["views_today"] = (
        LiveCodeDay.objects.filter(live_code=live_code, day=local_day).values_list("views", flat=True).first() or 0
    )
    recent = (
        LiveCodeJoin.objects.filter(live_code=live_code)
        .select_related("member", "guide", "store", "coupon", "coupon__template")
        .order_by("-joined_at", "-pk")[:RECENT_JOINS]
    )
    url = qr.public_url(live_code, request)
    return render(request, "campaigns/livecodes/detail.html", {
        "live_code": live_code, "public_url": url, "qr_svg": qr.inline_svg(url), "pool": pool,
        "figures": figures, "recent": recent, "sizes": qr.SIZES_CM, "can_manage": request.staff.can_manage_settings,
        "outside_window": not _within_window(live_code, now), "loopback": qr.is_loopback(url),
    })


def _within_window(live_code, now):
    return (live_code.starts_at is None or live_code.starts_at <= now) and (
        live_code.ends_at is None or now < live_code.ends_at
    )


@settings_required
@require_POST
def live_code_status(request, pk):
    live_code = get_object_or_404(LiveCode, pk=pk)
    status = request.POST.get("status")
    if status not in LiveCode.Status.values:
        raise Http404
    acquisition.set_live_code_status(live_code, status, timezone.now())
    messages.success(request, _("%(name)s is now %(status)s.") % {
        "name": live_code.name, "status": LiveCode.Status(status).label,
    })
    if status == LiveCode.Status.ARCHIVED and live_code.wecom_config_id and live_code.wecom_sync_error:
        messages.warning(request, _("WeCom did not remove the code's contact way yet (%(error)s); it is tried "
                                    "again every few minutes.") % {"error": live_code.wecom_sync_error})
    return redirect("campaigns:live_code_detail", pk=live_code.pk)


def _filename(live_code, suffix):
    stem = slugify(live_code.name, allow_unicode=True) or "live-code"
    return f"{stem}-{live_code.code}-{suffix}"


@staff_required
def live_code_qr(request, pk):
    live_code = get_object_or_404(_codes_for(request.staff), pk=pk)
    fmt = request.GET.get("format", "png").lower()
    if fmt not in qr.FORMATS:
        raise Http404
    try:
        size = int(request.GET.get("size", qr.DEFAULT_SIZE_CM))
    except ValueError:
        raise Http404 from None
    if size not in qr.SIZES_CM:
        raise Http404
    image = qr.render(qr.public_url(live_code, request), fmt, size)
    response = HttpResponse(image.content, content_type=image.content_type)
    response["Content-Disposition"] = content_disposition_header(
        request.GET.get("download", "1") != "0", f"{_filename(live_code, f'{size}cm')}.{fmt}"
    )
    return response


@staff_required
def live_code_print(request, pk):
    live_code = get_object_or_404(_codes_for(request.staff).select_related("store"), pk=pk)
    paper = request.GET.get("paper", "a6")
    if paper not in PAPERS:
        paper = "a6"
    url = qr.public_url(live_code, request)
    return render(request, "campaigns/livecodes/print.html", {
        "live_code": live_code, "public_url": url, "qr_svg": qr.inline_svg(url), "paper": paper,
        "papers": PAPERS,
    })
