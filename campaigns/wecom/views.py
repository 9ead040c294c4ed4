"""The callback endpoint WeCom calls for one brand: /hooks/wecom/<tenant slug>/.

GET is the URL verification handshake (decrypt echostr, answer the plaintext); POST carries an
encrypted event. Nothing is written unless the signature, the decryption and the corp id all
check out; the answer to an accepted POST is always "success" (WeCom retries anything else).
"""
import logging
import xml.etree.ElementTree as ET

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from scrm.models import Tenant
from scrm.tenancy import tenant_context
from scrm.views import settings_required

from ..models import OutreachSettings
from . import services
from .crypto import CryptoError, MsgCrypt, SignatureError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


class MalformedXML(ValueError):
    pass


def parse_xml(raw):
    """Top-level child elements of an <xml> document as {tag: text}. Documents with a DTD are refused,
    which rules out entity expansion and external entities."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise MalformedXML("XML with a document type declaration is not accepted.")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise MalformedXML(f"Not well-formed XML: {exc}") from None
    return {child.tag: (child.text or "").strip() for child in root}


def _crypt(tenant):
    settings = OutreachSettings.objects.filter(tenant=tenant).first()
    if settings is None or not (settings.wecom_callback_token and settings.wecom_aes_key and settings.wecom_corp_id):
        return None
    try:
        return MsgCrypt(settings.wecom_callback_token, settings.wecom_aes_key, settings.wecom_corp_id)
    except CryptoError:
        return None


def _bad(reason, status=400):
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def callback(request, slug):
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise Http404("No such brand.")
    with tenant_context(tenant):
        crypt = _crypt(tenant)
        if crypt is None:
            raise Http404("WeCom callbacks are not set up for this brand.")
        params = request.GET
        signature, timestamp, nonce = params.get("msg_signature", ""), params.get("timestamp", ""), params.get("nonce", "")
        if not (signature and timestamp and nonce):
            return HttpResponseBadRequest("msg_signature, timestamp and nonce are required.")
        if request.method == "GET":
            return _verify_url(crypt, signature, timestamp, nonce, params.get("echostr", ""))
        return _event(request, tenant, crypt, signature, timestamp, nonce)


def _verify_url(crypt, signature, timestamp, nonce, echostr):
    if not echostr:
        return HttpResponseBadRequest("echostr is required.")
    try:
        plain = crypt.verify_and_decrypt(signature, timestamp, nonce, echostr)
    except CryptoError as exc:
        return _bad(str(exc), 403 if isinstance(exc, SignatureError) else 400)
    return HttpResponse(plain, content_type="text/plain; charset=utf-8")


def _event(request, tenant, crypt, signature, timestamp, nonce):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponseBadRequest("Content-Length is not a number.")
    if length > MAX_BODY:
        return _bad("The body is larger than 64 KB.", 413)
    raw = request.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _bad("The body is larger than 64 KB.", 413)
    try:
        encrypted = parse_xml(raw).get("Encrypt", "")
        if not encrypted:
            return HttpResponseBadRequest("The body has no Encrypt element.")
        crypt.verify(signature, timestamp, nonce, encrypted)
        fields = parse_xml(crypt.decrypt(encrypted))
    except MalformedXML as exc:
        return HttpResponseBadRequest(str(exc))
    except CryptoError as exc:
        log.warning("wecom callback for %s refused: %s", tenant.slug, exc)
        return _bad(str(exc), 403 if isinstance(exc, SignatureError) else 400)
    receipt, handled = services.receive_callback(tenant, fields, timezone.now())
    log.info("wecom callback %s %s/%s: %s%s", tenant.slug, receipt.event, receipt.change_type, receipt.outcome,
             "" if handled else " (repeat)")
    return HttpResponse("success", content_type="text/plain; charset=utf-8")


@settings_required
@require_POST
def sync_tags(request):
    settings = OutreachSettings.objects.filter(tenant=request.tenant).first()
    if settings is None or not (settings.wecom_corp_id and settings.wecom_secret):
        messages.error(request, _("Set the WeCom corp id and customer-contact secret first."))
        return redirect("campaigns:settings")
    from campaigns.tasks import sync_wecom_tags

    tenant_id = request.tenant.pk
    transaction.on_commit(lambda: sync_wecom_tags.delay(tenant_id))
    messages.success(request, _("Tag sync to WeCom started: tag groups become corp tag groups and guides' "
                                "contacts are marked with the tags they hold."))
    return redirect("campaigns:settings")
