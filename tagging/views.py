"""Dashboard pages: segments and their builder, tag groups, bulk tagging and a member's tags."""
import functools
import json
import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from coupons.models import CouponTemplate
from members.filters import MemberFilterSet
from members.models import Member
from members.queries import visible_members
from scrm.models import Staff, Store
from scrm.views import staff_required

from . import segment_coupons as segment_coupons_service
from . import services, tasks
from .api import stream_members_csv
from .conditions import ConditionError, field_catalogue
from .forms import ApplyTagsForm, SegmentForm, TagForm, TagGroupForm
from .models import MemberTag, Segment, SegmentSnapshot, Tag, TagChange, TagGroup, TagSource

MEMBERS_PAGE = 50


def operator_required(view):
    """Owners and operators design tags and segments; others may look and tag their members."""

    @staff_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.staff.sees_all_members:
            raise PermissionDenied(_("Only owners and operators may change tags and segments."))
        return view(request, *args, **kwargs)

    return wrapped


def _visible(request):
    return None if request.staff.sees_all_members else visible_members(request.staff)


def _catalogue_context():
    stores = list(Store.objects.order_by("code").values("pk", "name"))
    guides = list(Staff.objects.filter(role=Staff.Role.GUIDE).order_by("name").values("pk", "name"))
    tags = list(Tag.objects.select_related("group").order_by("group__position", "group__name", "position")
                .values("pk", "name", "group__name"))
    segments = list(Segment.objects.order_by("name").values("pk", "name"))
    return {
        "texts": _builder_texts(),
        "fields": field_catalogue(),
        "refs": {
            "home_store": [[s["pk"], s["name"]] for s in stores],
            "preferred_store": [[s["pk"], s["name"]] for s in stores],
            "owner_guide": [[g["pk"], g["name"]] for g in guides],
            "tags": [[t["pk"], f"{t['group__name']} · {t['name']}"] for t in tags],
            "segment": [[s["pk"], s["name"]] for s in segments],
        },
    }


def _builder_texts():
    return {
        "all": _("All of"), "any": _("Any of"), "not": _("Not"), "addCondition": _("Add condition"),
        "addGroup": _("Add group"), "remove": _("Remove"), "yes": _("Yes"), "no": _("No"), "days": _("days"),
        "key": _("attribute key"), "event": _("event"), "categories": _("categories, comma-separated"),
        "skus": _("SKUs, comma-separated"), "listHint": _("comma-separated"), "empty": _("Add a condition to start."),
        "ops": {
            "eq": _("is"), "ne": _("is not"), "in": _("is one of"), "not_in": _("is none of"), "gt": ">", "gte": "≥",
            "lt": "<", "lte": "≤", "between": _("between"), "contains": _("contains"), "is_null": _("is empty"),
            "within_last_days": _("within the last N days"), "this_month": _("this month"),
            "within_next_days": _("within the next N days"), "has_any": _("has any of"), "has_all": _("has all of"),
            "has_none": _("has none of"),
        },
    }


# ---------------------------------------------------------------- segments

@staff_required
def segment_list(request):
    segments = Segment.objects.order_by("name")
    return render(request, "tagging/segments.html", {"segments": segments})


@staff_required
def segment_count(request, pk):
    """A segment's count now, for the list (loaded row by row) and the segment page."""
    segment = get_object_or_404(Segment, pk=pk)
    try:
        count = services.count_segment(segment, timezone.now(), _visible(request))
    except ConditionError:
        count = None
    return render(request, "tagging/_segment_count.html", {"segment": segment, "count": count})


@require_POST
@staff_required
def segment_preview(request):
    """The builder's live count: JSON in, {count} or {errors: {path: [...]}} out."""
    try:
        rules = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        return JsonResponse({"errors": {"rules": [_("The rules are not valid JSON.")]}}, status=400)
    try:
        count = services.members_matching(request.tenant, rules, timezone.now(), _visible(request)).count()
    except ConditionError as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    return JsonResponse({"count": count})


@operator_required
def segment_edit(request, pk=None):
    segment = get_object_or_404(Segment, pk=pk) if pk else None
    initial = {"rules": segment.rules} if segment else {"rules": {"all": []}}
    form = SegmentForm(request.POST or None, instance=segment, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data}
        try:
            saved = services.save_segment(request.tenant, data, segment, staff=request.staff)
        except ConditionError as exc:
            for path, errors in exc.errors.items():
                form.add_error(None, f"{path}: {' '.join(errors)}")
        else:
            messages.success(request, _("Segment %(name)s saved.") % {"name": saved.name})
            return redirect("tagging:segment", pk=saved.pk)
    context = {"form": form, "segment": segment, "catalogue": _catalogue_context()}
    return render(request, "tagging/segment_form.html", context)


@staff_required
def segment_detail(request, pk):
    segment = get_object_or_404(Segment, pk=pk)
    as_of = timezone.now()
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    error = None
    rows = []
    try:
        qs = services.segment_members(segment, as_of, visible_members(request.staff))
        rows = list(qs.filter(pk__gt=after).select_related("home_store", "owner_guide").order_by("pk")[:MEMBERS_PAGE + 1])
    except ConditionError as exc:
        error = exc.errors
    context = {
        "segment": segment,
        "members": rows[:MEMBERS_PAGE],
        "next_after": rows[MEMBERS_PAGE - 1].pk if len(rows) > MEMBERS_PAGE else None,
        "snapshots": SegmentSnapshot.objects.filter(segment=segment)[:10],
        "error": error,
        "rules_json": json.dumps(segment.rules, ensure_ascii=False, indent=2),
        "catalogue": _catalogue_context(),
    }
    return render(request, "tagging/segment_detail.html", context)


@staff_required
def segment_export(request, pk):
    segment = get_object_or_404(Segment, pk=pk)
    as_of = timezone.now()
    try:
        qs = services.segment_members(segment, as_of, visible_members(request.staff))
    except ConditionError:
        raise Http404(_("This segment's rules no longer hold.")) from None
    return stream_members_csv(request.tenant, qs, f"segment-{segment.pk}-{as_of:%Y%m%d%H%M}.csv", request.staff)


@require_POST
@operator_required
def segment_snapshot(request, pk):
    segment = get_object_or_404(Segment, pk=pk)
    snap = services.take_snapshot(segment, timezone.now(), staff=request.staff)
    messages.success(request, _("Snapshot taken: %(n)d members.") % {"n": snap.member_count})
    return redirect("tagging:segment", pk=segment.pk)


@require_POST
@operator_required
def segment_delete(request, pk):
    segment = get_object_or_404(Segment, pk=pk)
    try:
        services.delete_segment(segment)
    except services.TaggingError as exc:
        messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
        return redirect("tagging:segment", pk=segment.pk)
    messages.success(request, _("Segment deleted."))
    return redirect("tagging:segments")


# ---------------------------------------------------------------- tags

@staff_required
def tag_groups(request):
    groups = TagGroup.objects.annotate(tag_count=Count("tags")).order_by("position", "name")
    return render(request, "tagging/tags.html", {"groups": groups})


@staff_required
def tag_group_detail(request, pk):
    group = get_object_or_404(TagGroup, pk=pk)
    members = visible_members(request.staff)
    tags = Tag.objects.filter(group=group).order_by("position", "name")
    counts = dict(
        MemberTag.objects.filter(group=group, member__in=members).values_list("tag_id").annotate(n=Count("pk"))
        .values_list("tag_id", "n")
    )
    for tag in tags:
        tag.count = counts.get(tag.pk, 0)
    changes = TagChange.objects.filter(tag__group=group, member__in=members).select_related("tag", "member", "staff")[:50]
    return render(request, "tagging/tag_group.html", {"group": group, "tags": tags, "changes": changes})


@operator_required
def tag_group_edit(request, pk=None):
    group = get_object_or_404(TagGroup, pk=pk) if pk else None
    form = TagGroupForm(request.POST or None, instance=group)
    if group is not None and group.tags.exists():
        form.fields["kind"].disabled = True
    if request.method == "POST" and form.is_valid():
        saved = services.save_tag_group(request.tenant, form.cleaned_data, group)
        messages.success(request, _("Tag group %(name)s saved.") % {"name": saved.name})
        return redirect("tagging:tag_group", pk=saved.pk)
    return render(request, "tagging/tag_group_form.html", {"form": form, "group": group})


@operator_required
def tag_edit(request, group_pk, pk=None):
    group = get_object_or_404(TagGroup, pk=group_pk)
    tag = get_object_or_404(Tag, pk=pk, group=group) if pk else None
    form = TagForm(request.POST or None, instance=tag, group=group, initial={"rule": tag.rule if tag else None})
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "group": group}
        try:
            saved = services.save_tag(request.tenant, data, tag)
        except (services.TaggingError, ConditionError) as exc:
            for path, errors in exc.errors.items():
                form.add_error(None, f"{path}: {' '.join(errors)}")
        else:
            messages.success(request, _("Tag %(name)s saved.") % {"name": saved.name})
            return redirect("tagging:tag_group", pk=group.pk)
    context = {"form": form, "group": group, "tag": tag, "catalogue": _catalogue_context() if group.automatic else None}
    return render(request, "tagging/tag_form.html", context)


@require_POST
@operator_required
def tag_group_refresh(request, pk):
    group = get_object_or_404(TagGroup, pk=pk, kind=TagGroup.Kind.AUTOMATIC)
    tasks.refresh_automatic_tags.delay(request.tenant.pk, None, timezone.now().isoformat(), [group.pk])
    messages.success(request, _("The tags of %(name)s are being refreshed.") % {"name": group.name})
    return redirect("tagging:tag_group", pk=group.pk)


# ---------------------------------------------------------------- bulk tagging and one member's tags

def _bulk_members(request, params):
    """Members named by ids, a segment or the members list's filter, within what the caller sees."""
    visible = visible_members(request.staff)
    if params.get("ids"):
        try:
            ids = [int(x) for x in params["ids"].split(",") if x.strip()]
        except ValueError:
            return None, _("The member ids are not numbers.")
        return visible.filter(pk__in=ids[:100_000]), None
    if params.get("segment"):
        segment = get_object_or_404(Segment, pk=params["segment"])
        return services.segment_members(segment, timezone.now(), visible), None
    filters = {k: v for k, v in params.items() if k not in ("ids", "segment", "add", "remove", "csrfmiddlewaretoken", "page")}
    filterset = MemberFilterSet(filters or None, queryset=visible, request=request)
    if filterset.is_bound and not filterset.is_valid():
        return None, _("The filter is not valid.")
    return filterset.qs, None


@staff_required
def bulk_tag(request):
    """Add or remove tags on the members of the list's current filter, a segment or an id list."""
    params = request.GET.copy()
    members, problem = _bulk_members(request, params)
    form = ApplyTagsForm(request.POST or None)
    if request.method == "POST" and members is not None and form.is_valid():
        try:
            result = services.apply_tags(
                request.tenant, members, add=[t.pk for t in form.cleaned_data["add"]],
                remove=[t.pk for t in form.cleaned_data["remove"]], source=TagSource.MANUAL, staff=request.staff,
            )
        except services.TaggingError as exc:
            form.add_error(None, " ".join(m for ms in exc.errors.values() for m in ms))
        else:
            messages.success(request, _("%(added)d tags added, %(removed)d removed.") % result)
            query = params.copy()
            for key in ("ids", "segment"):
                query.pop(key, None)
            back = reverse("members:list")
            return redirect(f"{back}?{query.urlencode()}" if query else back)
    context = {
        "form": form, "problem": problem, "count": members.count() if members is not None else 0,
        "querystring": params.urlencode(),
    }
    return render(request, "tagging/bulk.html", context)


def _member_panel(request, member, status=200):
    held = MemberTag.objects.filter(member=member).select_related("tag", "group", "added_by").order_by(
        "group__position", "tag__position"
    )
    held_ids = {mt.tag_id for mt in held}
    addable = [
        tag for tag in Tag.objects.filter(group__kind=TagGroup.Kind.MANUAL).select_related("group")
        .order_by("group__position", "position") if tag.pk not in held_ids
    ]
    return render(request, "tagging/_member_panel.html", {"member": member, "held": held, "addable": addable}, status=status)


@staff_required
def member_tags(request, member_pk):
    """A member's tags with add and remove buttons: a panel for the 360 page and the guide's phone."""
    member = get_object_or_404(visible_members(request.staff), pk=member_pk)
    if request.method == "POST":
        try:
            tag_id = int(request.POST.get("tag", ""))
        except ValueError:
            return HttpResponseBadRequest(_("Choose a tag."))
        tag = get_object_or_404(Tag, pk=tag_id)
        action = {"add": "add", "remove": "remove"}.get(request.POST.get("action"))
        if action is None:
            return HttpResponseBadRequest(_("Choose a tag."))
        try:
            services.apply_tags(request.tenant, Member.objects.filter(pk=member.pk), **{action: [tag.pk]}, staff=request.staff)
        except services.TaggingError as exc:
            messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
            return _member_panel(request, member, status=400)
    return _member_panel(request, member)


# ---------------------------------------------------------------- issue coupons to a segment

def _coupon_template(value):
    if not str(value or "").isdigit():
        return None
    return get_object_or_404(CouponTemplate, pk=int(value))


@operator_required
def segment_coupons(request, pk):
    """Choose a coupon template, see the count and the stock left, confirm: the run goes to a task."""
    segment = get_object_or_404(Segment, pk=pk)
    if request.method == "POST":
        template = _coupon_template(request.POST.get("template"))
        if template is None:
            raise Http404
        run_key = request.POST.get("run", "")
        try:
            run, created = segment_coupons_service.start_run(request.tenant, segment, template, run_key, request.staff)
        except segment_coupons_service.IssueRunError as error:
            messages.error(request, error.message)
            return redirect(f"{reverse('tagging:segment_coupons', args=[segment.pk])}?template={template.pk}")
        if created:
            transaction.on_commit(lambda: tasks.issue_segment_coupons.delay(request.tenant.pk, run.pk))
        return redirect("tagging:segment_coupon_run", pk=segment.pk, run=run_key)
    template = _coupon_template(request.GET.get("template"))
    return render(request, "tagging/segment_coupons.html", {
        "segment": segment, "template": template, "run_key": uuid.uuid4().hex,
        "templates": CouponTemplate.objects.filter(active=True).order_by("name"),
        "preview": segment_coupons_service.preview(request.tenant, segment, template, timezone.now()) if template else None,
    })


@operator_required
def segment_coupon_run(request, pk, run):
    segment = get_object_or_404(Segment, pk=pk)
    found = segment_coupons_service.find_run(segment, run) if segment_coupons_service.valid_run_key(run) else None
    if found is None:
        raise Http404
    context = {"segment": segment, "run": found.response, "run_key": run}
    if request.headers.get("HX-Request"):
        return render(request, "tagging/_coupon_run.html", context)
    return render(request, "tagging/segment_coupon_run.html", context)
