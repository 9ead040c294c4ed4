"""The public landing page of a live code (/j/<code>/): the door for customers outside WeCom.

A parcel card or an SMS link brings the customer here on their phone. They give a mobile number,
confirm the one-time code sent to it by SMS, and are shown the guide they were given and how to
add them on WeCom. No login: the printed code names its brand, and the page runs in that brand's
tenant scope from there on.

Sending a code costs the brand an SMS and confirming it is a guess at a secret, so both are
bounded per visitor (address and code) on top of what the service bounds per mobile number.
"""
import functools
import ipaddress
import re
from datetime import timedelta

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from coupons.models import Coupon
from members.models import normalise_mobile
from scrm.tenancy import tenant_context

from . import acquisition
from .models import LiveCode, LiveCodeJoin

CN_MOBILE = re.compile(r"1[3-9]\d{9}")
INTERNATIONAL = re.compile(r"\+\d{8,15}")
# Per visitor and code, within WINDOW.
SEND_LIMIT = 5
CONFIRM_LIMIT = 10
WINDOW = timedelta(minutes=15)
SESSION_KEY = "landing-joins"


class MobileForm(forms.Form):
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"), max_length=20,
        widget=forms.TextInput(attrs={
            "type": "tel", "inputmode": "numeric", "autocomplete": "tel", "placeholder": "138 0013 8000",
        }),
    )

    def clean_mobile(self):
        try:
            mobile = normalise_mobile(self.cleaned_data["mobile"])
        except ValueError:
            mobile = ""
        # normalise_mobile also takes landline-length numbers; a code can only go to a mobile phone.
        if not (CN_MOBILE.fullmatch(mobile) or INTERNATIONAL.fullmatch(mobile)):
            raise forms.ValidationError(_("Enter an 11-digit mobile number, e.g. 138 0013 8000."))
        return mobile


class CodeForm(MobileForm):
    code = forms.CharField(
        label=gettext_lazy("Code from the SMS"), max_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": "8"}),
    )

    def clean_code(self):
        code = "".join(self.cleaned_data["code"].split())
        if not code.isdigit():
            raise forms.ValidationError(_("The code is the digits in the SMS."))
        return code


def _client(request):
    """The visitor's address. Behind the site's own proxy (a private or loopback peer) it is the
    last X-Forwarded-For entry, the one the proxy appended; entries a client sends itself come
    before it and are ignored, so they cannot buy a fresh allowance."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    try:
        behind_proxy = ipaddress.ip_address(remote).is_private
    except ValueError:
        behind_proxy = False
    if forwarded and behind_proxy:
        return forwarded.split(",")[-1].strip()[:64]
    return remote


def _spend(kind, live_code, request, limit):
    """Count one attempt of ``kind`` by this visitor; False once they have used ``limit`` of them."""
    key = f"landing:{kind}:{live_code.code}:{_client(request)}"
    cache.add(key, 0, int(WINDOW.total_seconds()))
    try:
        used = cache.incr(key)
    except ValueError:
        cache.set(key, 1, int(WINDOW.total_seconds()))
        used = 1
    return used <= limit


def _public(view):
    """Resolve the printed code to its brand and run the view in that brand's scope, zone and language."""

    @never_cache
    @functools.wraps(view)
    def wrapped(request, code):
        live_code = LiveCode.objects.unscoped().select_related("tenant", "store").filter(code=code).first()
        if live_code is None or live_code.status == LiveCode.Status.ARCHIVED:
            return render(request, "landing/not_found.html", status=404)
        tenant = live_code.tenant
        language = translation.get_language()
        if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            # The customer has not chosen a language: the brand's, not the phone's.
            language = tenant.default_language
        with tenant_context(tenant), timezone.override(tenant.zone), translation.override(language):
            request.LANGUAGE_CODE = language
            return view(request, live_code)

    return wrapped


def _context(live_code, **extra):
    return {"live_code": live_code, "tenant": live_code.tenant, "store": live_code.store, **extra}


def _render(request, template, live_code, **extra):
    partial = request.headers.get("HX-Request") == "true"
    context = _context(live_code, **extra)
    if partial:
        return render(request, template, context)
    return render(request, "landing/join.html", {**context, "step_template": template})


@_public
def join(request, live_code):
    now = timezone.now()
    try:
        acquisition.check_joinable(live_code, now)
    except acquisition.AcquisitionError as exc:
        if request.headers.get("HX-Request") == "true":
            # Stopped while the customer was on the page: show the whole "not active" page.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = request.path
            return response
        return render(request, "landing/not_active.html", _context(live_code, reason=exc.code, message=str(exc)))
    if request.method != "POST":
        acquisition.record_landing_view(live_code, now)
        return _render(request, "landing/_mobile.html", live_code, form=MobileForm())
    if request.POST.get("step") == "confirm":
        return _confirm(request, live_code, now)
    return _send(request, live_code, now)


def _send(request, live_code, now):
    form = MobileForm(request.POST)
    if not form.is_valid():
        return _render(request, "landing/_mobile.html", live_code, form=form)
    mobile = form.cleaned_data["mobile"]
    if not _spend("send", live_code, request, SEND_LIMIT):
        form.add_error("mobile", _("Too many codes were asked for from this phone. Please try again in 15 minutes."))
        return _render(request, "landing/_mobile.html", live_code, form=form)
    try:
        acquisition.start_verification(live_code, mobile, now)
    except acquisition.AcquisitionError as exc:
        form.add_error("mobile", _error_text(exc))
        return _render(request, "landing/_mobile.html", live_code, form=form)
    return _render(request, "landing/_code.html", live_code, form=CodeForm(initial={"mobile": mobile}),
                   mobile=mobile, masked=_mask(mobile), sent=True)


def _confirm(request, live_code, now):
    form = CodeForm(request.POST)
    mobile = form.data.get("mobile", "")
    if not form.is_valid():
        if "mobile" in form.errors:
            return _render(request, "landing/_mobile.html", live_code, form=MobileForm(request.POST))
        return _render(request, "landing/_code.html", live_code, form=form, mobile=mobile, masked=_mask(mobile))
    mobile = form.cleaned_data["mobile"]
    if not _spend("confirm", live_code, request, CONFIRM_LIMIT):
        form.add_error("code", _("Too many wrong codes. Please ask for a new code in 15 minutes."))
        return _render(request, "landing/_code.html", live_code, form=form, mobile=mobile, masked=_mask(mobile))
    try:
        result = acquisition.confirm_verification(live_code, mobile, form.cleaned_data["code"], now)
    except acquisition.AcquisitionError as exc:
        form.add_error("code", _error_text(exc))
        return _render(request, "landing/_code.html", live_code, form=form, mobile=mobile, masked=_mask(mobile))
    joined = result.join
    remembered = request.session.get(SESSION_KEY, {})
    remembered[live_code.code] = joined.pk
    request.session[SESSION_KEY] = remembered
    if request.headers.get("HX-Request") == "true":
        return render(request, "landing/_welcome.html", _welcome_context(live_code, joined))
    return redirect("landing:welcome", code=live_code.code)


@_public
def welcome(request, live_code):
    join_id = request.session.get(SESSION_KEY, {}).get(live_code.code)
    joined = LiveCodeJoin.objects.filter(pk=join_id, live_code=live_code).first() if join_id else None
    if joined is None:
        return redirect("landing:join", code=live_code.code)
    context = _welcome_context(live_code, joined)
    return render(request, "landing/join.html", {**context, "step_template": "landing/_welcome.html"})


def _welcome_context(live_code, joined):
    joined = LiveCodeJoin.objects.select_related("guide", "store", "member").get(pk=joined.pk)
    coupon = (
        Coupon.objects.select_related("template").filter(pk=joined.coupon_id).first() if joined.coupon_id else None
    )
    guide = joined.guide
    store = joined.store or live_code.store
    return _context(live_code, joined=joined, guide=guide, guide_store=store, coupon=coupon,
                    wecom_qr_url=live_code.wecom_qr_url)


def _error_text(exc):
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return " ".join(str(m) for messages in errors.values() for m in (messages if isinstance(messages, (list, tuple)) else [messages]))
    return str(exc)


def _mask(mobile):
    if len(mobile) == 11:
        return f"{mobile[:3]} **** {mobile[-4:]}"
    return mobile
