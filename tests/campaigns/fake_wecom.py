"""A local stand-in for the WeCom server API (qyapi.weixin.qq.com) and its callbacks.

    with FakeWeCom() as wecom:            # or: wecom = FakeWeCom().start(); …; wecom.stop()
        settings.wecom_api_base = wecom.base_url
        wecom.fail_next(45009, 2)         # the next two API calls hit the rate limit
        params, body = wecom.callback("acme", token, aes_key, corp_id,
                                      {"Event": "change_external_contact", "ChangeType": "del_follow_user", …})
        client.post(f"/hooks/wecom/acme/?{urlencode(params)}", body, content_type="text/xml")

It issues access tokens for one corp id and secret, keeps contact ways, welcome messages,
message templates, external contacts, corp tags and tag marks in memory, answers with WeCom's
error codes, and records every request in ``requests`` (path, query, JSON body, errcode).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from urllib.parse import parse_qs, urlencode, urlparse
from xml.sax.saxutils import escape

import pytest

from campaigns.wecom.crypto import MsgCrypt

TOKEN_ERRORS = {40001, 40014, 42001}

# WeCom's published WXBizMsgCrypt sample parameters, good defaults for a brand under test.
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
SECRET = "contact-secret"


@pytest.fixture
def wecom():
    """A running FakeWeCom for the sample corp id and secret (import this fixture into a test module)."""
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET) as fake:
        yield fake


def configure(brand, fake, token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID):
    """Point ``brand``'s WeCom settings at ``fake`` with the callback token and key given."""
    from campaigns.models import OutreachSettings

    with brand.scope():
        OutreachSettings.objects.update_or_create(tenant=brand.tenant, defaults={
            "wecom_api_base": fake.base_url, "wecom_corp_id": corp_id, "wecom_secret": fake.secret,
            "wecom_callback_token": token, "wecom_aes_key": aes_key,
        })


def post_callback(client, slug, params, body):
    """POST a callback made by ``FakeWeCom.callback`` to the brand's endpoint with a Django test client."""
    return client.post(f"/hooks/wecom/{slug}/?{urlencode(params)}", body, content_type="text/xml")


def callback_xml(fields):
    """The inner XML of a callback: <xml><Key><![CDATA[value]]></Key>…</xml>."""
    parts = []
    for name, value in fields.items():
        text = str(value)
        parts.append(f"<{name}>{text}</{name}>" if isinstance(value, int) else f"<{name}><![CDATA[{text}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


class FakeWeCom:
    def __init__(self, corp_id="ww-fake-corp", secret="fake-contact-secret"):
        self.corp_id = corp_id
        self.secret = secret
        self.requests = []
        self.valid_tokens = set()
        self.contact_ways = {}
        self.welcome_messages = []
        self.templates = []
        self.app_messages = []
        self.contacts = {}
        self.tag_groups = {}
        self.marks = {}
        self.sent_callbacks = []
        self._failures = []
        self._ids = count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    body = json.loads(raw.decode()) if raw else {}
                except ValueError:
                    body = None
                with fake._lock:
                    payload = fake._dispatch(url.path, query, body)
                    fake.requests.append({"method": self.command, "path": url.path, "query": query, "body": body,
                                          "errcode": payload.get("errcode", 0)})
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------ life

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ controls

    def fail_next(self, errcode, n=1, path=None):
        """The next ``n`` API calls (gettoken excluded; only ``path`` if given) answer ``errcode``.
        A token error also invalidates the token the call carried, as an expired token would be."""
        self._failures.extend([(errcode, path)] * n)

    def calls(self, path):
        return [r for r in self.requests if r["path"] == path]

    def add_contact(self, external_userid, name, follow_userids=(), **profile):
        self.contacts[external_userid] = {
            "external_contact": {"external_userid": external_userid, "name": name, "type": 1, **profile},
            "follow_user": [{"userid": u, "remark": "", "createtime": 0, "tags": []} for u in follow_userids],
        }

    def tags_of(self, userid, external_userid):
        """Names of the corp tags marked on one contact, sorted."""
        names = {t["id"]: t["name"] for g in self.tag_groups.values() for t in g["tag"]}
        return sorted(names[i] for i in self.marks.get((userid, external_userid), set()) if i in names)

    # ------------------------------------------------------------ callbacks

    def callback(self, tenant_slug, token, aes_key, corp_id, xml_fields, timestamp=None, nonce=None):
        """A signed, encrypted callback as WeCom posts it: (query params, XML body bytes)."""
        crypt = MsgCrypt(token, aes_key, corp_id)
        fields = {"ToUserName": corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                  "MsgType": "event", **xml_fields}
        encrypted = crypt.encrypt(callback_xml(fields))
        timestamp = str(timestamp or int(time.time()))
        nonce = nonce or str(next(self._ids) * 7919)
        params = {"msg_signature": crypt.sign(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{escape(corp_id)}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>").encode()
        self.sent_callbacks.append((tenant_slug, fields))
        return params, body

    def verification(self, token, aes_key, corp_id, echo="1616140317555161061", timestamp="1409659589", nonce="263014780"):
        """The GET query of the URL verification handshake."""
        crypt = MsgCrypt(token, aes_key, corp_id)
        echostr = crypt.encrypt(echo)
        return {"msg_signature": crypt.sign(timestamp, nonce, echostr), "timestamp": timestamp, "nonce": nonce,
                "echostr": echostr}

    # ------------------------------------------------------------ the API

    def _id(self, prefix):
        return f"{prefix}{next(self._ids):06d}"

    def _dispatch(self, path, query, body):
        if path == "/cgi-bin/gettoken":
            if query.get("corpid") != self.corp_id or query.get("corpsecret") != self.secret:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            token = self._id("ACCESS_TOKEN_")
            self.valid_tokens.add(token)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        token = query.get("access_token")
        for index, (errcode, only) in enumerate(self._failures):
            if only is None or only == path:
                del self._failures[index]
                if errcode in TOKEN_ERRORS:
                    self.valid_tokens.discard(token)
                return {"errcode": errcode, "errmsg": "injected failure"}
        if token not in self.valid_tokens:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if body is None:
            return {"errcode": 47001, "errmsg": "data format error"}
        handler = getattr(self, "_" + path.rsplit("/", 1)[-1], None)
        if handler is None:
            return {"errcode": 404, "errmsg": "no such api in the fake"}
        return handler(body, query)

    def _add_contact_way(self, body, query):
        if not body.get("user") or len(body.get("state", "")) > 30:
            return {"errcode": 40058, "errmsg": "invalid parameter"}
        config_id = self._id("cfg")
        self.contact_ways[config_id] = dict(body)
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id,
                "qr_code": f"https://wework.qpic.cn/fake/{config_id}.png"}

    def _update_contact_way(self, body, query):
        if body.get("config_id") not in self.contact_ways:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        self.contact_ways[body["config_id"]].update({k: v for k, v in body.items() if k != "config_id"})
        return {"errcode": 0, "errmsg": "ok"}

    def _del_contact_way(self, body, query):
        if self.contact_ways.pop(body.get("config_id"), None) is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        return {"errcode": 0, "errmsg": "ok"}

    def _send_welcome_msg(self, body, query):
        code = body.get("welcome_code")
        if not code or any(m["welcome_code"] == code for m in self.welcome_messages):
            return {"errcode": 41051, "errmsg": "welcome_code invalid or used"}
        self.welcome_messages.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _add_msg_template(self, body, query):
        self.templates.append(body)
        return {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": self._id("msg")}

    def _send(self, body, query):
        """message/send: an application message (应用消息) to staff."""
        if not body.get("agentid"):
            return {"errcode": 40056, "errmsg": "invalid agentid"}
        if not body.get("touser") or body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return {"errcode": 40058, "errmsg": "invalid parameter"}
        self.app_messages.append(body)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": self._id("appmsg")}

    def _get(self, body, query):
        contact = self.contacts.get(query.get("external_userid"))
        if contact is None:
            return {"errcode": 84061, "errmsg": "not external contact"}
        return {"errcode": 0, "errmsg": "ok", **contact}

    def _get_corp_tag_list(self, body, query):
        groups = list(self.tag_groups.values())
        if body.get("group_id"):
            groups = [g for g in groups if g["group_id"] in body["group_id"]]
        if body.get("tag_id"):
            wanted = set(body["tag_id"])
            groups = [{**g, "tag": [t for t in g["tag"] if t["id"] in wanted]} for g in groups]
            groups = [g for g in groups if g["tag"]]
        return {"errcode": 0, "errmsg": "ok", "tag_group": groups}

    def _add_corp_tag(self, body, query):
        if body.get("group_id"):
            group = self.tag_groups.get(body["group_id"])
            if group is None:
                return {"errcode": 40068, "errmsg": "invalid tagid"}
        else:
            group = next((g for g in self.tag_groups.values() if g["group_name"] == body.get("group_name")), None)
            if group is None:
                group = {"group_id": self._id("etGROUP"), "group_name": body.get("group_name", ""),
                         "create_time": int(time.time()), "order": body.get("order", 0), "tag": []}
                self.tag_groups[group["group_id"]] = group
        added = []
        for tag in body.get("tag", []):
            existing = next((t for t in group["tag"] if t["name"] == tag["name"]), None)
            if existing is None:
                existing = {"id": self._id("etTAG"), "name": tag["name"], "create_time": int(time.time()),
                            "order": tag.get("order", 0)}
                group["tag"].append(existing)
            added.append(existing)
        return {"errcode": 0, "errmsg": "ok", "tag_group": {**group, "tag": added}}

    def _edit_corp_tag(self, body, query):
        for group in self.tag_groups.values():
            if group["group_id"] == body.get("id"):
                group["group_name"] = body["name"]
                return {"errcode": 0, "errmsg": "ok"}
            for tag in group["tag"]:
                if tag["id"] == body.get("id"):
                    tag["name"] = body["name"]
                    return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 40068, "errmsg": "invalid tagid"}

    def _del_corp_tag(self, body, query):
        for group_id in body.get("group_id", []):
            self.tag_groups.pop(group_id, None)
        gone = set(body.get("tag_id", []))
        for group_id, group in list(self.tag_groups.items()):
            group["tag"] = [t for t in group["tag"] if t["id"] not in gone]
            if not group["tag"]:
                del self.tag_groups[group_id]
        return {"errcode": 0, "errmsg": "ok"}

    def _mark_tag(self, body, query):
        known = {t["id"] for g in self.tag_groups.values() for t in g["tag"]}
        if not set(body.get("add_tag", [])) <= known:
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        if not body.get("add_tag") and not body.get("remove_tag"):
            return {"errcode": 40058, "errmsg": "add_tag and remove_tag are empty"}
        marks = self.marks.setdefault((body.get("userid"), body.get("external_userid")), set())
        marks |= set(body.get("add_tag", []))
        marks -= set(body.get("remove_tag", []))
        return {"errcode": 0, "errmsg": "ok"}
