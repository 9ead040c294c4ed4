"""The WeCom server API for one brand, with the customer-contact secret.

The access token is kept in a WeComToken row until shortly before it expires; when WeCom says a
token is invalid or expired (40001, 40014, 42001) it is fetched again once and the call retried.
Busy (-1), rate limits and network failures raise ``WeComError(transient=True)`` so that callers
retry later; anything else is permanent.
"""
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import OutreachSettings, WeComToken

TIMEOUT_SECONDS = 10
TOKEN_ERRORS = {40001, 40014, 42001}
# -1 busy; 45009 API frequency; 45033 concurrency; 45011 frequency per user; 45035 too frequent.
TRANSIENT_ERRORS = {-1, 45009, 45011, 45033, 45035}
# Refresh a little before WeCom's expiry so a token never dies between reading and using it.
TOKEN_MARGIN = timedelta(minutes=5)


class WeComError(Exception):
    def __init__(self, errcode, errmsg, transient=None, what=""):
        self.errcode = errcode
        self.errmsg = errmsg
        self.transient = errcode in TRANSIENT_ERRORS if transient is None else transient
        super().__init__(f"wecom {what}: {errcode} {errmsg}".strip())


class WeComClient:
    def __init__(self, settings):
        self.settings = settings
        self.tenant_id = settings.tenant_id
        self.corp_id = settings.wecom_corp_id
        self.base = settings.wecom_api_base.rstrip("/")

    @classmethod
    def for_tenant(cls, tenant):
        settings = OutreachSettings.objects.filter(tenant=tenant).first()
        if settings is None or not (settings.wecom_corp_id and settings.wecom_secret):
            return None
        return cls(settings)

    # ------------------------------------------------------------ transport

    def _http(self, method, path, query, body=None):
        url = f"{self.base}{path}?{urllib.parse.urlencode(query)}"
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise WeComError(exc.code, f"HTTP {exc.code}", transient=exc.code >= 500 or exc.code == 429,
                             what=path) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            raise WeComError(None, str(getattr(exc, "reason", exc)), transient=True, what=path) from None
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise WeComError(None, "not JSON", transient=True, what=path) from None
        if not isinstance(payload, dict):
            raise WeComError(None, "not a JSON object", transient=True, what=path)
        return payload

    def _stored_token(self):
        row = WeComToken.objects.filter(tenant_id=self.tenant_id, corp_id=self.corp_id).first()
        if row and row.expires_at > timezone.now() + TOKEN_MARGIN:
            return row.access_token
        return None

    def _fetch_token(self):
        payload = self._http("GET", "/cgi-bin/gettoken",
                             {"corpid": self.corp_id, "corpsecret": self.settings.wecom_secret})
        if payload.get("errcode", 0) != 0 or not payload.get("access_token"):
            raise WeComError(payload.get("errcode"), payload.get("errmsg", ""), what="gettoken")
        token = payload["access_token"]
        expires_at = timezone.now() + timedelta(seconds=int(payload.get("expires_in") or 7200))
        try:
            with transaction.atomic():
                WeComToken.objects.update_or_create(
                    tenant_id=self.tenant_id, corp_id=self.corp_id,
                    defaults={"access_token": token, "expires_at": expires_at},
                )
        except IntegrityError:
            # Another process stored the token at the same moment; WeCom hands out the same one.
            pass
        return token

    def call(self, method, path, body=None, query=None):
        """One API call with the access token; returns the payload when errcode is 0."""
        token = self._stored_token()
        for attempt in range(2):
            if token is None:
                token = self._fetch_token()
            payload = self._http(method, path, {**(query or {}), "access_token": token}, body)
            errcode = payload.get("errcode", 0)
            if errcode == 0:
                return payload
            if errcode in TOKEN_ERRORS and attempt == 0:
                token = None
                continue
            raise WeComError(errcode, payload.get("errmsg", ""), what=path)
        raise WeComError(None, "access token refused", transient=True, what=path)

    # ------------------------------------------------------------ contact ways (渠道活码)

    def add_contact_way(self, state, user_ids, remark="", skip_verify=True):
        payload = self.call("POST", "/cgi-bin/externalcontact/add_contact_way", {
            "type": 2 if len(user_ids) > 1 else 1, "scene": 2, "state": state, "user": list(user_ids),
            "remark": remark[:30], "skip_verify": skip_verify,
        })
        return {"config_id": payload["config_id"], "qr_code": payload.get("qr_code", "")}

    def update_contact_way(self, config_id, user_ids, state):
        self.call("POST", "/cgi-bin/externalcontact/update_contact_way",
                  {"config_id": config_id, "user": list(user_ids), "state": state})

    def del_contact_way(self, config_id):
        self.call("POST", "/cgi-bin/externalcontact/del_contact_way", {"config_id": config_id})

    # ------------------------------------------------------------ messages

    def send_welcome_msg(self, welcome_code, text, attachments=None):
        body = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        self.call("POST", "/cgi-bin/externalcontact/send_welcome_msg", body)

    def add_msg_template(self, sender, external_userids, text, attachments=None):
        """A 1:1 mass-message task for the guide ``sender``; returns {"msgid", "fail_list"}."""
        body = {"chat_type": "single", "external_userid": list(external_userids), "sender": sender,
                "text": {"content": text}}
        if attachments:
            body["attachments"] = list(attachments)
        payload = self.call("POST", "/cgi-bin/externalcontact/add_msg_template", body)
        return {"msgid": payload.get("msgid", ""), "fail_list": payload.get("fail_list") or []}

    def send_app_message(self, agent_id, userids, text):
        """A text application message (应用消息) to staff; returns the user ids WeCom could not reach."""
        payload = self.call("POST", "/cgi-bin/message/send", {
            "touser": "|".join(userids), "msgtype": "text", "agentid": agent_id, "text": {"content": text},
        })
        missed = "|".join(payload.get(k) or "" for k in ("invaliduser", "unlicenseduser"))
        return sorted({u for u in missed.split("|") if u})

    # ------------------------------------------------------------ contacts

    def get_external_contact(self, external_userid):
        payload = self.call("GET", "/cgi-bin/externalcontact/get", query={"external_userid": external_userid})
        return {"external_contact": payload.get("external_contact") or {},
                "follow_user": payload.get("follow_user") or []}

    # ------------------------------------------------------------ corp tags (企业标签)

    def get_corp_tag_list(self, group_ids=None, tag_ids=None):
        body = {}
        if group_ids:
            body["group_id"] = list(group_ids)
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        return self.call("POST", "/cgi-bin/externalcontact/get_corp_tag_list", body).get("tag_group") or []

    def add_corp_tag(self, tags, group_id=None, group_name=None, order=0):
        """Adds tags ([{"name", "order"}]) to a group (by id, or a new one by name); returns the group."""
        body = {"tag": list(tags), "order": order}
        if group_id:
            body["group_id"] = group_id
        else:
            body["group_name"] = group_name
        return self.call("POST", "/cgi-bin/externalcontact/add_corp_tag", body)["tag_group"]

    def edit_corp_tag(self, wecom_id, name, order=None):
        body = {"id": wecom_id, "name": name}
        if order is not None:
            body["order"] = order
        self.call("POST", "/cgi-bin/externalcontact/edit_corp_tag", body)

    def del_corp_tag(self, tag_ids=(), group_ids=()):
        body = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        self.call("POST", "/cgi-bin/externalcontact/del_corp_tag", body)

    def mark_tag(self, userid, external_userid, add_tag=(), remove_tag=()):
        self.call("POST", "/cgi-bin/externalcontact/mark_tag", {
            "userid": userid, "external_userid": external_userid,
            "add_tag": list(add_tag), "remove_tag": list(remove_tag),
        })
