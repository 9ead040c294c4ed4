"""The dashboard shell: home page and settings (stores, staff, API keys)."""
import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .forms import ApiKeyForm, StaffForm, StoreForm
from .models import ApiKey, Staff, Store


def staff_required(view):
    """Signed in as an active staff member of a brand; other logins (a bare admin user) are refused."""

    @login_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.staff is None:
            raise PermissionDenied(_("This login does not belong to a brand's staff."))
        return view(request, *args, **kwargs)

    return wrapped


def settings_required(view):
    """Owners and operators only."""

    @staff_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.staff.can_manage_settings:
            raise PermissionDenied(_("Only owners and operators may change settings."))
        return view(request, *args, **kwargs)

    return wrapped


@staff_required
def dashboard(request):
    # The figures are panels that each app contributes through its template tags, so that this
    # core package does not depend on the apps built on it.
    return render(request, "dashboard.html")


# ---------------------------------------------------------------- stores

@settings_required
def store_list(request):
    stores = Store.objects.order_by("code")
    return render(request, "settings/stores.html", {"stores": stores})


@settings_required
def store_edit(request, pk=None):
    store = get_object_or_404(Store, pk=pk) if pk else None
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("Store %(name)s saved.") % {"name": saved.name})
        return redirect("settings_stores")
    return render(request, "settings/store_form.html", {"form": form, "store": store})


# ---------------------------------------------------------------- staff

@settings_required
def staff_list(request):
    rank = {role: i for i, role in enumerate(Staff.Role.values)}
    staff = sorted(
        Staff.objects.select_related("user").prefetch_related("stores"),
        key=lambda s: (not s.active, rank[s.role], s.name),
    )
    return render(request, "settings/staff.html", {"staff_members": staff})


@settings_required
def staff_edit(request, pk=None):
    editor = request.staff
    member = get_object_or_404(Staff.objects.select_related("user"), pk=pk) if pk else None
    if member is not None and member.role == Staff.Role.OWNER and editor.role != Staff.Role.OWNER:
        raise PermissionDenied(_("Only an owner may change an owner."))
    form = StaffForm(request.POST or None, instance=member, editor=editor)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {f: data[f] for f in ("name", "role", "mobile", "wecom_userid", "active")}
        if member is None:
            saved = services.create_staff(
                request.tenant, data["username"], data["password"], fields.pop("name"), fields.pop("role"),
                stores=data["stores"], mobile=fields["mobile"], wecom_userid=fields["wecom_userid"], email=data["email"],
            )
            if not data["active"]:
                services.update_staff(saved, active=False)
        else:
            if data["username"] != member.user.get_username():
                member.user.username = data["username"]
                member.user.save(update_fields=["username"])
            saved = services.update_staff(
                member, password=data["password"] or None, stores=data["stores"], email=data["email"], **fields
            )
        messages.success(request, _("%(name)s saved.") % {"name": saved.name})
        return redirect("settings_staff")
    return render(request, "settings/staff_form.html", {"form": form, "staff_member": member})


# ---------------------------------------------------------------- API keys

@settings_required
def api_key_list(request):
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, secret = ApiKey.generate(request.tenant, form.cleaned_data["name"], created_by=request.staff)
        created = {"key": key, "secret": secret}
        form = ApiKeyForm()
    keys = ApiKey.objects.select_related("created_by").order_by("revoked_at", "-created_at")
    response = render(request, "settings/api_keys.html", {"keys": keys, "form": form, "created": created})
    # The secret is on this page only: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@settings_required
def api_key_revoke(request, pk):
    key = get_object_or_404(ApiKey, pk=pk)
    services.revoke_api_key(key)
    messages.success(request, _("API key %(name)s revoked.") % {"name": key.name})
    return redirect("settings_api_keys")
