"""The live-code pages of the dashboard: list, form, a code's page, its QR image and print view."""
import re
import struct
import zlib
from urllib.parse import unquote
from datetime import timedelta
from xml.etree import ElementTree

import pytest
import segno
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import acquisition
from campaigns.models import LiveCode, LiveCodeGuide, LiveCodeJoin
from tagging.models import Tag, TagGroup

from .helpers import template

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


def make_code(brand, **fields):
    data = {"name": "门店收银台", "channel_type": "store_cashier", "store": brand.store, "rule": "round_robin",
            "pool": [brand.guide, brand.guide2], "status": "active"}
    data.update(fields)
    with brand.scope():
        return acquisition.save_live_code(brand.tenant, data, by=brand.operator, as_of=timezone.now())


def join_through(brand, code, mobile, as_of):
    with brand.scope():
        return acquisition.join(code, door=LiveCodeJoin.Door.API, key=f"test:{mobile}", mobile=mobile, as_of=as_of)


def landing_url(code):
    return f"http://testserver/j/{code.code}/"


def read_png(data):
    """(width, height, pixels per metre, rows of 0/1 with 1 for dark) of a 1-bit greyscale PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8].decode()
        chunks.setdefault(kind, []).append(data[position + 8:position + 8 + length])
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks["IHDR"][0][:10])
    assert (depth, colour) == (1, 0), "a black-and-white PNG"
    ppm = struct.unpack(">IIB", chunks["pHYs"][0])[0] if "pHYs" in chunks else None
    raw = zlib.decompress(b"".join(chunks["IDAT"]))
    stride = (width + 7) // 8
    rows, previous = [], bytes(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - 1] if i else 0
            up, corner = previous[i], previous[i - 1] if i else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = bytes(row)
        rows.append([0 if (row[x // 8] >> (7 - x % 8)) & 1 else 1 for x in range(width)])
    return width, height, ppm, rows


def modules_of(rows, count):
    """Sample the centre of each module of a ``count`` x ``count`` symbol image (quiet zone included)."""
    step = len(rows) / count
    return [[rows[int((y + .5) * step)][int((x + .5) * step)] for x in range(count)] for y in range(count)]


def matrix_with_border(url):
    qr = segno.make(url, error="m", micro=False)
    size = qr.symbol_size(scale=1, border=4)[0]
    return [[1 if dark else 0 for dark in row] for row in qr.matrix_iter(scale=1, border=4)], size


def svg_modules(path):
    """The dark modules (x, y) drawn by segno's SVG path: one horizontal stroke per run."""
    x = y = 0.0
    dark = set()
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(float(a))))
            x += float(a)
    return dark


# ---------------------------------------------------------------- the list

def test_an_operator_sees_each_code_with_its_joins_today_and_over_seven_days(brand):
    code = make_code(brand)
    quiet = make_code(brand, name="包裹卡", channel_type="parcel_card", store=brand.store2)
    now = timezone.now()
    join_through(brand, code, "13800138001", now)
    join_through(brand, code, "13800138002", now - timedelta(days=3))
    join_through(brand, code, "13800138003", now - timedelta(days=10))
    page = brand.session(brand.operator).get("/campaigns/live-codes/")
    assert page.status_code == 200
    html = page.content.decode()
    row = re.search(rf'data-live-code="{code.pk}".*?</tr>', html, re.S).group(0)
    assert re.search(r'data-testid="joins-today">1<', row) and re.search(r'data-testid="joins-week">2<', row)
    assert "导购甲" in row and "导购乙" in row and brand.store.name in row
    other = re.search(rf'data-live-code="{quiet.pk}".*?</tr>', html, re.S).group(0)
    assert 'data-testid="joins-today">0<' in other
    assert "/campaigns/live-codes/new/" in html


def test_the_list_costs_the_same_queries_for_three_codes_as_for_twelve(brand):
    client = brand.session(brand.operator)

    def queries_for_list():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/campaigns/live-codes/").status_code == 200
        return len(captured)

    for i in range(3):
        join_through(brand, make_code(brand, name=f"码{i}"), f"1380013800{i}", timezone.now())
    few = queries_for_list()
    for i in range(9):
        make_code(brand, name=f"更多{i}", store=brand.store2, pool=[brand.guide2])
    assert queries_for_list() == few


def test_the_list_filters_by_store_channel_and_status_and_hides_archived_codes(brand):
    cashier = make_code(brand)
    parcel = make_code(brand, name="包裹卡", channel_type="parcel_card", store=brand.store2)
    paused = make_code(brand, name="海报", channel_type="poster", status="paused")
    archived = make_code(brand, name="旧门贴", channel_type="door_sign", status="archived")
    client = brand.session(brand.operator)

    def listed(query=""):
        return {c.pk for c in client.get("/campaigns/live-codes/" + query).context["codes"]}

    assert listed() == {cashier.pk, parcel.pk, paused.pk}
    assert listed(f"?store_id={brand.store2.pk}") == {parcel.pk}
    assert listed("?channel_type=poster") == {paused.pk}
    assert listed("?status=paused") == {paused.pk}
    assert listed("?status=archived") == {archived.pk}
    assert listed("?q=包裹") == {parcel.pk}
    assert listed(f"?q={paused.code}") == {paused.pk}
    assert listed(f"?guide_id={brand.guide2.pk}") == {cashier.pk, parcel.pk, paused.pk}


def test_a_guide_is_refused_every_live_code_page(brand):
    code = make_code(brand)
    client = brand.session(brand.guide)
    for url in ("/campaigns/live-codes/", "/campaigns/live-codes/new/", f"/campaigns/live-codes/{code.pk}/",
                f"/campaigns/live-codes/{code.pk}/edit/", f"/campaigns/live-codes/{code.pk}/qr/",
                f"/campaigns/live-codes/{code.pk}/print/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "paused"}).status_code == 403
    code.refresh_from_db()
    assert code.status == "active"


def test_a_store_manager_sees_and_prints_their_stores_codes_without_changing_them(brand):
    mine = make_code(brand)
    theirs = make_code(brand, name="二店收银台", store=brand.store2)
    client = brand.session(brand.manager)
    assert {c.pk for c in client.get("/campaigns/live-codes/").context["codes"]} == {mine.pk}
    detail = client.get(f"/campaigns/live-codes/{mine.pk}/")
    assert detail.status_code == 200
    assert f"/campaigns/live-codes/{mine.pk}/edit/" not in detail.content.decode()
    assert client.get(f"/campaigns/live-codes/{mine.pk}/print/").status_code == 200
    assert client.get(f"/campaigns/live-codes/{mine.pk}/qr/").status_code == 200
    assert client.get(f"/campaigns/live-codes/{theirs.pk}/").status_code == 404
    assert client.get(f"/campaigns/live-codes/{mine.pk}/edit/").status_code == 403
    assert client.get("/campaigns/live-codes/new/").status_code == 403


# ---------------------------------------------------------------- the form

def form_data(brand, **fields):
    data = {"name": "快递包裹卡", "channel_type": "parcel_card", "store": brand.store.pk, "status": "active",
            "rule": "round_robin", "pool": [brand.guide2.pk, brand.guide.pk], "daily_cap": "30",
            "work_start": "09:00", "work_end": "21:00", "welcome_message": "{name}您好，我是{guide}，券码{coupon_code}",
            "starts_at": "", "ends_at": "", "cost": "0.80"}
    data.update(fields)
    return data


def test_an_operator_creates_a_code_whose_pool_keeps_the_order_they_gave(brand):
    with brand.scope():
        gift = template(brand)
        group = TagGroup.objects.create(tenant=brand.tenant, name="渠道来源", kind="manual")
        tag = Tag.objects.create(tenant=brand.tenant, group=group, name="包裹卡")
    client = brand.session(brand.operator)
    form = client.get("/campaigns/live-codes/new/")
    assert form.status_code == 200 and "{coupon_code}" in form.content.decode()
    answer = client.post("/campaigns/live-codes/new/", form_data(brand, welcome_coupon=gift.pk, tags=[tag.pk]))
    with brand.scope():
        code = LiveCode.objects.get(name="快递包裹卡")
        pool = list(LiveCodeGuide.objects.filter(live_code=code).order_by("position").values_list("guide_id", flat=True))
        assert [t.pk for t in code.tags.all()] == [tag.pk]
    assert answer.status_code == 302 and answer["Location"] == f"/campaigns/live-codes/{code.pk}/"
    assert pool == [brand.guide2.pk, brand.guide.pk]
    assert (code.daily_cap, str(code.cost), code.welcome_coupon_id, code.created_by_id) == (30, "0.80", gift.pk, brand.operator.pk)
    assert re.fullmatch(r"[23456789a-z]{10}", code.code)
    edit = client.get(f"/campaigns/live-codes/{code.pk}/edit/").content.decode()
    assert edit.index(f'value="{brand.guide2.pk}" id="pool-{brand.guide2.pk}" checked') < edit.index(
        f'value="{brand.guide.pk}" id="pool-{brand.guide.pk}" checked'
    )


def test_each_mistake_in_the_form_is_shown_next_to_its_field_and_nothing_is_saved(brand):
    client = brand.session(brand.operator)
    answer = client.post("/campaigns/live-codes/new/", form_data(
        brand, name="", rule="fixed", pool=[], work_end="", starts_at="2026-05-01T10:00", ends_at="2026-04-01T10:00",
        daily_cap="0", cost="abc",
    ))
    assert answer.status_code == 200
    errors = answer.context["form"].errors
    assert set(errors) >= {"name", "fixed_guide", "work_end", "ends_at", "daily_cap", "cost"}
    html = answer.content.decode()
    assert html.count("invalid-feedback") >= 6 and 'name="name" maxlength="120" class="form-control is-invalid"' in html
    with brand.scope():
        assert not LiveCode.objects.exists()


def test_a_welcome_message_with_an_unknown_variable_is_refused_on_its_field(brand):
    client = brand.session(brand.operator)
    answer = client.post("/campaigns/live-codes/new/", form_data(brand, welcome_message="{name}，{birthday}快乐"))
    assert answer.status_code == 200
    assert "{birthday}" in " ".join(answer.context["form"].errors["welcome_message"])
    with brand.scope():
        assert not LiveCode.objects.exists()


def test_a_round_robin_code_needs_at_least_one_guide(brand):
    answer = brand.session(brand.operator).post("/campaigns/live-codes/new/", form_data(brand, pool=[]))
    assert "pool" in answer.context["form"].errors


def test_changing_the_guides_never_changes_the_printed_code_or_its_qr_image(brand):
    code = make_code(brand, pool=[brand.guide])
    client = brand.session(brand.operator)
    before = client.get(f"/campaigns/live-codes/{code.pk}/qr/?format=png&size=5").content
    answer = client.post(f"/campaigns/live-codes/{code.pk}/edit/", form_data(
        brand, name=code.name, channel_type="store_cashier", rule="fixed", fixed_guide=brand.guide2.pk,
        pool=[brand.guide2.pk], backup_guide=brand.guide.pk,
    ))
    assert answer.status_code == 302
    changed = LiveCode.objects.unscoped().get(pk=code.pk)
    assert changed.code == code.code and changed.fixed_guide_id == brand.guide2.pk
    assert client.get(f"/campaigns/live-codes/{code.pk}/qr/?format=png&size=5").content == before


# ---------------------------------------------------------------- the QR image

@pytest.mark.parametrize("size", [5, 8, 12])
def test_the_png_is_a_300_dpi_print_of_the_landing_url_no_wider_than_asked(brand, size):
    code = make_code(brand)
    answer = brand.session(brand.operator).get(f"/campaigns/live-codes/{code.pk}/qr/?format=png&size={size}")
    assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
    disposition = answer["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"门店收银台-{code.code}-{size}cm.png" in unquote(disposition)
    width, height, ppm, rows = read_png(answer.content)
    target = round(size / 2.54 * 300)
    assert width == height and target * 0.9 <= width <= target
    assert ppm == round(300 / 0.0254)
    expected, count = matrix_with_border(landing_url(code))
    assert width % count == 0
    assert modules_of(rows, count) == expected


def test_the_svg_parses_and_carries_its_printed_width_and_the_url(brand, settings):
    settings.SITE_URL = "https://club.example.cn"
    code = make_code(brand, name="Door sign A")
    answer = brand.session(brand.operator).get(f"/campaigns/live-codes/{code.pk}/qr/?format=svg&size=12")
    assert answer.status_code == 200 and answer["Content-Type"] == "image/svg+xml"
    assert answer["Content-Disposition"] == f'attachment; filename="door-sign-a-{code.code}-12cm.svg"'
    root = ElementTree.fromstring(answer.content)
    assert root.tag == f"{SVG}svg"
    assert [float(root.get(side).removesuffix("mm")) for side in ("width", "height")] == [120, 120]
    assert root.find(f"{SVG}title").text == f"https://club.example.cn/j/{code.code}/"
    drawn = svg_modules(next(p for p in root.iter(f"{SVG}path") if p.get("stroke")).get("d"))
    expected, _count = matrix_with_border(f"https://club.example.cn/j/{code.code}/")
    assert drawn == {(x, y) for y, row in enumerate(expected) for x, dark in enumerate(row) if dark}


def test_an_unknown_size_or_format_is_not_found(brand):
    code = make_code(brand)
    client = brand.session(brand.operator)
    for query in ("?size=7", "?size=big", "?format=gif", "?format=pdf&size=8"):
        assert client.get(f"/campaigns/live-codes/{code.pk}/qr/{query}").status_code == 404, query


# ---------------------------------------------------------------- a code's page and its print view

def test_the_code_page_shows_the_landing_url_the_guides_against_the_cap_and_recent_joins(brand):
    code = make_code(brand, daily_cap=2)
    now = timezone.now()
    first = join_through(brand, code, "13800138001", now)
    join_through(brand, code, "13800138002", now)
    join_through(brand, code, "13800138003", now)
    page = brand.session(brand.operator).get(f"/campaigns/live-codes/{code.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and page.context["live_code"] == code
    assert f'data-testid="public-url">{landing_url(code)}<' in html
    assert "<svg" in html and f"/campaigns/live-codes/{code.pk}/qr/?format=png&amp;size=8" in html
    counts = re.findall(r'data-guide="(\d+)".*?data-testid="guide-joins">([^<]+)<', html, re.S)
    assert counts == [(str(brand.guide.pk), "2 / 2"), (str(brand.guide2.pk), "1 / 2")]
    assert 'data-testid="joins-today">3<' in html
    assert html.count("<tr>", html.index('data-testid="recent-joins"')) == 4
    assert f"/members/{first.member.pk}/" in html


def test_the_print_view_is_a_card_with_the_store_the_qr_and_a_call_to_action_in_both_languages(brand):
    code = make_code(brand)
    page = brand.session(brand.operator).get(f"/campaigns/live-codes/{code.pk}/print/?paper=a5")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="print-store">acme store 1<' in html
    assert "size: 148mm 210mm" in html and "@media print" in html and "window.print()" in html
    assert "<svg" in html and code.code in html and code.name in html
    assert 'data-testid="cta-en">Scan to add your personal shopping guide' in html
    assert 'lang="zh-hans" data-testid="cta-zh"' in html


def test_pausing_and_archiving_a_code_from_its_page(brand):
    code = make_code(brand)
    client = brand.session(brand.operator)
    client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "paused"})
    code.refresh_from_db()
    assert code.status == "paused"
    client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "archived"})
    code.refresh_from_db()
    assert code.status == "archived"
    assert client.post(f"/campaigns/live-codes/{code.pk}/status/", {"status": "gone"}).status_code == 404


def test_another_brands_live_code_is_not_found_on_every_page(brand, other_brand):
    theirs = make_code(other_brand)
    client = brand.session(brand.operator)
    for url in (f"/campaigns/live-codes/{theirs.pk}/", f"/campaigns/live-codes/{theirs.pk}/edit/",
                f"/campaigns/live-codes/{theirs.pk}/qr/", f"/campaigns/live-codes/{theirs.pk}/qr/?format=svg&size=5",
                f"/campaigns/live-codes/{theirs.pk}/print/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/campaigns/live-codes/{theirs.pk}/status/", {"status": "archived"}).status_code == 404
    assert client.post(f"/campaigns/live-codes/{theirs.pk}/edit/", form_data(brand)).status_code == 404
    assert theirs.pk not in {c.pk for c in client.get("/campaigns/live-codes/").context["codes"]}
    theirs.refresh_from_db()
    assert (theirs.status, theirs.name) == ("active", "门店收银台")


def test_the_form_offers_only_this_brands_guides_stores_and_coupons(brand, other_brand):
    with other_brand.scope():
        template(other_brand, name="对手的券")
    html = brand.session(brand.operator).get("/campaigns/live-codes/new/").content.decode()
    assert "导购甲" in html and "acme store 1" in html
    assert "rival store" not in html and "对手的券" not in html
    answer = brand.session(brand.operator).post("/campaigns/live-codes/new/", form_data(
        brand, pool=[other_brand.guide.pk], store=other_brand.store.pk,
    ))
    assert {"pool", "store"} <= set(answer.context["form"].errors)
