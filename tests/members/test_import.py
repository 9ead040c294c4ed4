"""CSV import of members and orders: the commands, the dashboard, bad rows and a real crash."""
import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import translation

from members import importing, services
from members.models import ImportJob, Member, Order

SHANGHAI = ZoneInfo("Asia/Shanghai")
MEMBER_HEADER = ["external_id", "name", "mobile", "gender", "birthday", "city", "joined_at", "store_code", "attr_size"]
ORDER_HEADER = [
    "external_id", "member_external_id", "mobile", "store_code", "guide", "placed_at", "status", "total", "discount",
    "refunded_amount", "sku", "name", "category", "quantity", "unit_price", "amount",
]


@pytest.fixture
def brand(brand):
    # Error messages are stored in the brand's language; English keeps the assertions readable.
    brand.tenant.default_language = "en"
    brand.tenant.save(update_fields=["default_language"])
    return brand


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"
    return settings.IMPORT_DIR


def write_csv(path, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows(rows)
    return path


def member_row(number, **cells):
    row = {
        "external_id": f"M{number:05d}", "name": f"会员{number}", "mobile": f"139{number:08d}", "gender": "female",
        "birthday": "1990-05-12", "city": "上海", "joined_at": "2025-03-01 10:00", "store_code": "ACME-01",
        "attr_size": "M",
    }
    row.update(cells)
    return [row[column] for column in MEMBER_HEADER]


def order_row(order_id, member_id, sku, **cells):
    row = {
        "external_id": order_id, "member_external_id": member_id, "mobile": "", "store_code": "ACME-01", "guide": "",
        "placed_at": "2025-11-01 14:32", "status": "paid", "total": "399.00", "discount": "0", "refunded_amount": "",
        "sku": sku, "name": "基础圆领T恤", "category": "apparel", "quantity": "1", "unit_price": "199.50",
        "amount": "199.50",
    }
    row.update(cells)
    return [row[column] for column in ORDER_HEADER]


def run_command(name, *args):
    out, err = io.StringIO(), io.StringIO()
    with translation.override("en"):
        call_command(name, *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue()


def last_job(brand):
    with brand.scope():
        return ImportJob.objects.order_by("-pk").first()


def members_by_external_id(brand):
    with brand.scope():
        return {m.external_id: m for m in Member.objects.select_related("home_store")}


# ---------------------------------------------------------------- the commands

def test_bad_rows_are_reported_by_line_and_column_and_the_good_rows_are_imported(brand, tmp_path):
    path = write_csv(tmp_path / "members.csv", [
        MEMBER_HEADER,
        member_row(1),
        member_row(2, mobile="12345"),
        member_row(3, store_code="NOPE"),
        member_row(4, gender="robot", birthday="31/02/1990"),
        member_row(5, external_id=""),
        member_row(6),
    ])

    output = run_command("import_members", path, "--tenant", "acme")

    assert set(members_by_external_id(brand)) == {"M00001", "M00006"}
    job = last_job(brand)
    assert (job.status, job.rows_done, job.total_rows) == ("done", 6, 6)
    assert (job.created_count, job.updated_count, job.unchanged_count, job.error_count) == (2, 0, 0, 4)
    assert [(e["line"], e["field"], e["external_id"]) for e in job.errors] == [
        (3, "mobile", "M00002"),
        (4, "store_code", "M00003"),
        (5, "gender", "M00004"),
        (5, "birthday", "M00004"),
        (6, "external_id", ""),
    ]
    assert "row 3, mobile: Not a valid mobile number." in output
    assert "2 created, 0 updated, 0 unchanged, 4 rejected" in output


def test_members_keep_the_values_of_their_columns(brand, tmp_path):
    path = write_csv(tmp_path / "members.csv", [MEMBER_HEADER, member_row(1, mobile="+86 139-0000-0001")])

    run_command("import_members", path, "--tenant", "acme")

    member = members_by_external_id(brand)["M00001"]
    assert member.name == "会员1"
    assert member.mobile == "13900000001"
    assert member.birthday.isoformat() == "1990-05-12"
    assert member.home_store == brand.store
    assert member.attributes == {"size": "M"}
    # A time without a zone is the brand's local time.
    assert member.joined_at == datetime(2025, 3, 1, 10, 0, tzinfo=SHANGHAI)


def test_attribute_columns_set_their_keys_and_keep_the_members_other_attributes(brand, tmp_path):
    with brand.scope():
        services.upsert_members(brand.tenant, [
            (0, {"external_id": "M00001", "attributes": {"vip": "gold", "size": "S"}}),
        ])
    path = write_csv(tmp_path / "members.csv", [["external_id", "attr_size"], ["M00001", "L"]])

    run_command("import_members", path, "--tenant", "acme")

    assert members_by_external_id(brand)["M00001"].attributes == {"vip": "gold", "size": "L"}


def test_a_file_saved_by_excel_with_a_bom_imports_with_its_chinese_names(brand, tmp_path):
    path = write_csv(tmp_path / "excel.csv", [MEMBER_HEADER, member_row(1, name="王芳")], encoding="utf-8-sig")

    run_command("import_members", path, "--tenant", "acme")

    assert members_by_external_id(brand)["M00001"].name == "王芳"


def test_a_gbk_file_imports_with_its_chinese_names(brand, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", [MEMBER_HEADER, member_row(1, name="李娜", city="杭州")], encoding="gbk")

    run_command("import_members", path, "--tenant", "acme")

    member = members_by_external_id(brand)["M00001"]
    assert (member.name, member.city) == ("李娜", "杭州")


def test_a_utf16_file_is_refused_with_a_message_saying_how_to_save_it(brand, tmp_path):
    path = write_csv(tmp_path / "unicode.txt", [MEMBER_HEADER, member_row(1)], encoding="utf-16")

    with pytest.raises(CommandError, match="neither UTF-8 nor GBK"):
        run_command("import_members", path, "--tenant", "acme")

    assert members_by_external_id(brand) == {}


def test_a_file_without_an_external_id_column_fails_and_says_so(brand, tmp_path):
    path = write_csv(tmp_path / "members.csv", [["name", "mobile"], ["王芳", "13800138000"]])

    with pytest.raises(CommandError, match="no external_id column"):
        run_command("import_members", path, "--tenant", "acme")

    job = last_job(brand)
    assert job.status == "failed"
    assert "external_id" in job.message


def test_importing_the_same_file_again_finds_every_row_unchanged(brand, tmp_path):
    members = write_csv(tmp_path / "members.csv", [MEMBER_HEADER] + [member_row(n) for n in range(1, 6)])
    orders = write_csv(tmp_path / "orders.csv", [
        ORDER_HEADER,
        order_row("SO1", "M00001", "TS-1"), order_row("SO1", "M00001", "TS-2"),
        order_row("SO2", "M00002", "TS-1", total="199.50"),
    ])
    run_command("import_members", members, "--tenant", "acme")
    run_command("import_orders", orders, "--tenant", "acme")

    run_command("import_members", members, "--tenant", "acme")
    member_job = last_job(brand)
    run_command("import_orders", orders, "--tenant", "acme")
    order_job = last_job(brand)

    assert (member_job.created_count, member_job.updated_count, member_job.unchanged_count) == (0, 0, 5)
    assert (order_job.created_count, order_job.updated_count, order_job.unchanged_count) == (0, 0, 2)
    with brand.scope():
        assert ImportJob.objects.count() == 4
        assert Member.objects.count() == 5
        assert Order.objects.count() == 2


def test_consecutive_order_rows_become_one_order_even_across_a_batch_boundary(brand, tmp_path):
    with brand.scope():
        services.upsert_members(brand.tenant, [(0, {"external_id": "M00001", "mobile": "13900000001"})])
    path = write_csv(tmp_path / "orders.csv", [
        ORDER_HEADER,
        order_row("SO1", "M00001", "TS-1", total="599.00"),
        # Later rows of an order may leave the order's fields blank.
        order_row("SO1", "", "TS-2", placed_at="", total="", store_code="", status=""),
        order_row("SO1", "", "BG-3", placed_at="", total="", name="帆布托特包", quantity="2", unit_price="100",
                  amount="200.00"),
        order_row("SO2", "", "TS-1", mobile="13900000001", total="199.50"),
        order_row("SO3", "M09999", "TS-1", total="199.50"),
    ])

    output = run_command("import_orders", path, "--tenant", "acme", "--batch-size", "2")

    with brand.scope():
        orders = {o.external_id: o for o in Order.objects.prefetch_related("lines")}
        assert sorted(orders) == ["SO1", "SO2", "SO3"]
        so1 = orders["SO1"]
        assert [(line.sku, line.quantity, line.amount) for line in so1.lines.order_by("pk")] == [
            ("TS-1", 1, Decimal("199.50")), ("TS-2", 1, Decimal("199.50")), ("BG-3", 2, Decimal("200.00")),
        ]
        assert so1.total == Decimal("599.00")
        assert so1.store == brand.store
        assert so1.member.external_id == "M00001"
        assert orders["SO2"].member.external_id == "M00001"  # bound by mobile
        assert orders["SO3"].member is None  # waits for its member
    job = last_job(brand)
    assert (job.rows_done, job.created_count, job.error_count) == (5, 3, 0)
    assert "3 created" in output


def test_a_bad_order_line_is_reported_on_its_own_row_and_rejects_its_order(brand, tmp_path):
    path = write_csv(tmp_path / "orders.csv", [
        ORDER_HEADER,
        order_row("SO1", "M00001", "TS-1"),
        order_row("SO1", "M00001", "TS-2", quantity="two"),
        order_row("SO2", "M00001", "TS-1", total="-5"),
        order_row("SO3", "M00001", "TS-1"),
        order_row("SO1", "M00001", "TS-3"),
    ])

    run_command("import_orders", path, "--tenant", "acme")

    with brand.scope():
        assert list(Order.objects.values_list("external_id", flat=True)) == ["SO3"]
    job = last_job(brand)
    assert (job.created_count, job.error_count) == (1, 3)
    assert [(e["line"], e["field"], e["external_id"]) for e in job.errors] == [
        (3, "quantity", "SO1"),
        (4, "total", "SO2"),
        (6, "external_id", "SO1"),
    ]
    assert "must be consecutive" in job.errors[2]["message"]


def test_stored_errors_are_capped_but_every_rejected_row_is_counted(brand, tmp_path, settings):
    settings.IMPORT_MAX_STORED_ERRORS = 3
    path = write_csv(tmp_path / "members.csv", [MEMBER_HEADER] + [member_row(n, mobile="bad") for n in range(1, 8)])

    run_command("import_members", path, "--tenant", "acme", "--batch-size", "2")

    job = last_job(brand)
    assert job.error_count == 7
    assert [e["line"] for e in job.errors] == [2, 3, 4]


def test_resume_with_an_unknown_job_id_is_refused(brand):
    with pytest.raises(CommandError, match="No members import #999"):
        run_command("import_members", "--tenant", "acme", "--resume", "999")


def test_resume_by_job_id_carries_on_after_the_rows_already_done(brand, tmp_path):
    path = write_csv(tmp_path / "members.csv", [MEMBER_HEADER] + [member_row(n) for n in range(1, 5)])
    first = write_csv(tmp_path / "first.csv", [MEMBER_HEADER] + [member_row(n) for n in range(1, 3)])
    run_command("import_members", first, "--tenant", "acme")
    with brand.scope():
        sha256, _encoding = importing.fingerprint(path)
        job, _resumed = importing.open_import(brand.tenant, "members", path, "members.csv", sha256)
        # As a crashed run leaves it: the first two rows committed with their progress.
        ImportJob.objects.filter(pk=job.pk).update(status="running", rows_done=2, created_count=2)

    output = run_command("import_members", "--tenant", "acme", "--resume", job.pk)

    job.refresh_from_db()
    assert (job.status, job.rows_done, job.created_count, job.unchanged_count) == ("done", 4, 4, 0)
    assert len(members_by_external_id(brand)) == 4
    assert f"Import #{job.pk}" in output


# ---------------------------------------------------------------- a real crash

CRASHING_CLIENT = "scrm-import-crash-test"


def _test_database_url():
    """The URL of the database this test runs on, for a separate process to use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}?application_name={CRASHING_CLIENT}"


def _wait_until_the_server_let_go(deadline):
    """A Postgres backend finishes the statement (a COMMIT, say) that its killed client sent
    last; the test reads the database only once that backend is gone."""
    if connection.vendor != "postgresql":
        return
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [CRASHING_CLIENT])
            if cursor.fetchone()[0] == 0:
                return
        assert time.monotonic() < deadline, "the killed import's database session did not end"


@pytest.mark.django_db(transaction=True)
def test_a_crash_mid_file_keeps_whole_batches_and_the_rerun_imports_every_row_exactly_once(brand, tmp_path):
    total, batch = 3000, 25
    path = write_csv(tmp_path / "members.csv", [MEMBER_HEADER] + [member_row(n) for n in range(1, total + 1)])
    env = dict(os.environ, DATABASE_URL=_test_database_url(), CELERY_TASK_ALWAYS_EAGER="1")
    log = tmp_path / "import.log"
    deadline = time.monotonic() + 120
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "import_members", str(path), "--tenant", "acme", "--batch-size", str(batch)],
            cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
        try:
            with brand.scope():
                while not ImportJob.objects.filter(rows_done__gte=4 * batch).exists():
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "the import did not get going"
                    try:
                        process.wait(timeout=0.05)
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    _wait_until_the_server_let_go(deadline)

    with brand.scope():
        job = ImportJob.objects.get()
        crashed_at = job.rows_done
        assert job.status == "running"
        assert 0 < crashed_at < total, ("the kill came too late to land mid-file", log.read_text()[-2000:])
        assert crashed_at % batch == 0
        # Exactly the committed batches are there, no row of a half-written one.
        assert Member.objects.count() == crashed_at == job.created_count

    output = run_command("import_members", path, "--tenant", "acme", "--batch-size", "1000")

    assert f"{total} rows read; {total} created, 0 updated, 0 unchanged, 0 rejected." in output
    with brand.scope():
        job.refresh_from_db()
        assert ImportJob.objects.count() == 1
        assert (job.status, job.rows_done, job.total_rows) == ("done", total, total)
        assert (job.created_count, job.updated_count, job.unchanged_count, job.error_count) == (total, 0, 0, 0)
        imported = sorted(Member.objects.values_list("external_id", flat=True))
        assert imported == [f"M{n:05d}" for n in range(1, total + 1)]


# ---------------------------------------------------------------- the dashboard

def login(staff):
    client = Client()
    client.force_login(staff.user)
    return client


def upload(client, kind, rows, name="members.csv", encoding="utf-8-sig"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    file = SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")
    return client.post("/imports/", {"kind": kind, "file": file})


def test_an_operator_uploads_a_csv_and_sees_the_result_and_the_error_report(brand, import_dir):
    client = login(brand.operator)

    response = upload(client, "members", [MEMBER_HEADER, member_row(1), member_row(2, mobile="12345"), member_row(3)])

    job = last_job(brand)
    assert response.status_code == 302
    assert response["Location"] == f"/imports/{job.pk}/"
    assert (job.status, job.created_count, job.error_count, job.created_by) == ("done", 2, 1, brand.operator)
    assert Path(job.file_path).parent == import_dir / str(brand.tenant.pk)
    page = client.get(response["Location"]).content.decode()
    assert "members.csv" in page
    assert "Not a valid mobile number." in page
    assert "M00002" in page
    assert f"/imports/{job.pk}/errors.csv" in page
    listing = client.get("/imports/").content.decode()
    assert f"/imports/{job.pk}/" in listing


def test_the_error_report_downloads_as_a_csv_that_excel_opens(brand):
    client = login(brand.owner)
    upload(client, "members", [MEMBER_HEADER, member_row(1, mobile="12345", external_id="=HYPERLINK(1)")])
    job = last_job(brand)

    response = client.get(f"/imports/{job.pk}/errors.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[1] == ["2", "mobile", "Not a valid mobile number.", "'=HYPERLINK(1)"]


def test_uploading_orders_from_the_dashboard_groups_their_lines(brand):
    client = login(brand.operator)

    rows = [ORDER_HEADER, order_row("SO1", "M1", "TS-1"), order_row("SO1", "M1", "TS-2")]
    upload(client, "orders", rows, "orders.csv")

    with brand.scope():
        order = Order.objects.get()
        assert order.lines.count() == 2
    assert last_job(brand).kind == "orders"


def test_uploading_a_partly_imported_file_again_resumes_its_import(brand, tmp_path):
    client = login(brand.operator)
    rows = [MEMBER_HEADER] + [member_row(n) for n in range(1, 5)]
    earlier = write_csv(tmp_path / "earlier.csv", rows, encoding="utf-8-sig")
    with brand.scope():
        sha256, _encoding = importing.fingerprint(earlier)
        job, _resumed = importing.open_import(brand.tenant, "members", earlier, "members.csv", sha256)
        # As a crashed worker leaves it: the first two rows committed with their progress.
        run_command("import_members", write_csv(tmp_path / "two.csv", rows[:3]), "--tenant", "acme")
        ImportJob.objects.filter(pk=job.pk).update(status="running", rows_done=2, created_count=2)

    upload(client, "members", rows)

    job.refresh_from_db()
    with brand.scope():
        assert ImportJob.objects.filter(file_sha256=sha256).count() == 1
    assert (job.status, job.rows_done, job.created_count, job.unchanged_count) == ("done", 4, 4, 0)
    assert len(members_by_external_id(brand)) == 4


def test_the_page_of_a_running_import_polls_for_progress_until_it_ends(brand, tmp_path):
    client = login(brand.operator)
    path = write_csv(tmp_path / "members.csv", [MEMBER_HEADER, member_row(1)])
    with brand.scope():
        job, _resumed = importing.open_import(brand.tenant, "members", path, "members.csv", "0" * 64)
        ImportJob.objects.filter(pk=job.pk).update(status="running", total_rows=4, rows_done=1)

    page = client.get(f"/imports/{job.pk}/").content.decode()
    fragment = client.get(f"/imports/{job.pk}/", HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every' in page
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert "25%" in fragment.content.decode()
    assert "HX-Refresh" not in fragment
    with brand.scope():
        ImportJob.objects.filter(pk=job.pk).update(status="done", rows_done=4)
    finished = client.get(f"/imports/{job.pk}/", HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true"
    assert 'hx-trigger="every' not in finished.content.decode()


def test_a_file_the_import_cannot_read_shows_why_on_its_page(brand):
    client = login(brand.operator)
    file = SimpleUploadedFile("members.csv", "external_id\nM1\n".encode("utf-16"), content_type="text/csv")

    response = client.post("/imports/", {"kind": "members", "file": file}, follow=True)

    assert last_job(brand).status == "failed"
    assert "neither UTF-8 nor GBK" in response.content.decode()


def test_another_brands_import_is_not_found(brand, other_brand):
    upload(login(brand.operator), "members", [MEMBER_HEADER, member_row(1, mobile="bad")], "acme-vip.csv")
    job = last_job(brand)
    client = login(other_brand.operator)

    assert client.get(f"/imports/{job.pk}/").status_code == 404
    assert client.get(f"/imports/{job.pk}/", HTTP_HX_REQUEST="true").status_code == 404
    assert client.get(f"/imports/{job.pk}/errors.csv").status_code == 404
    assert client.post(f"/imports/{job.pk}/resume/").status_code == 404
    assert "acme-vip.csv" not in client.get("/imports/").content.decode()


@pytest.mark.parametrize("role", ["guide", "manager"])
def test_guides_and_store_managers_cannot_import(brand, role):
    client = login(getattr(brand, role))

    assert client.get("/imports/").status_code == 403
    response = upload(client, "members", [MEMBER_HEADER, member_row(1)])

    assert response.status_code == 403
    assert members_by_external_id(brand) == {}
    with brand.scope():
        assert not ImportJob.objects.exists()


def test_a_visitor_who_is_not_signed_in_is_sent_to_the_login_page(db):
    response = Client().get("/imports/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_empty_sample_files_name_the_columns(brand):
    client = login(brand.operator)

    members = client.get("/imports/sample/members.csv").content.decode("utf-8").lstrip("\ufeff")
    orders = client.get("/imports/sample/orders.csv").content.decode("utf-8").lstrip("\ufeff")

    assert members.splitlines()[0].startswith("external_id,name,mobile")
    assert "attr_size" in members
    assert orders.splitlines()[0] == ",".join(ORDER_HEADER)
    assert client.get("/imports/sample/coupons.csv").status_code == 404
