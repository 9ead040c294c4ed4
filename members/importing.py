"""CSV import of members and orders.

A file is streamed, never loaded whole. Rows are validated with the API's serializers and
written by the API's services (``upsert_members``, ``ingest_orders``) in batches. Each batch's
writes and the job's progress (rows done, counts, row errors) commit in one transaction, so
after a crash ``ImportJob.rows_done`` says exactly which rows are in the database, and running
the job again carries on after them.

Columns are the API's field names. Members: ``external_id, name, mobile, gender, birthday,
city, joined_at, source_channel, store_code, guide, contact_status`` plus any ``attr_<key>``
column, which sets ``attributes[<key>]``. Orders: one row per order line, ``external_id,
member_external_id, mobile, store_code, guide, placed_at, status, total, discount,
refunded_amount, sku, name, category, quantity, unit_price, amount``; the rows of one order
are consecutive, its order fields are read from its first row, and an order is never split
across batches. A blank cell leaves the field as it is (a new row gets the field's default).
"""
import codecs
import csv
import hashlib
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from scrm.api import validate_bulk
from scrm.tenancy import tenant_context

from . import services
from .models import ImportJob, Member
from .serializers import MemberUpsertSerializer, OrderSerializer

Kind = ImportJob.Kind
Status = ImportJob.Status

MEMBER_COLUMNS = (
    "external_id", "name", "mobile", "gender", "birthday", "city", "joined_at", "source_channel",
    "store_code", "guide", "wecom_external_userid", "contact_status",
)
ATTRIBUTE_PREFIX = "attr_"
ORDER_COLUMNS = (
    "external_id", "member_external_id", "mobile", "store_code", "guide", "placed_at", "status",
    "total", "discount", "refunded_amount",
)
LINE_COLUMNS = ("sku", "name", "category", "quantity", "unit_price", "amount")
COLUMNS = {Kind.MEMBERS: MEMBER_COLUMNS, Kind.ORDERS: ORDER_COLUMNS + LINE_COLUMNS}
REQUIRED_COLUMNS = {Kind.MEMBERS: ("external_id",), Kind.ORDERS: ("external_id", "placed_at", "total")}

# Excel saves "CSV UTF-8" with a BOM; older Excel and many POS exports write GBK (GB18030 is its superset).
ENCODINGS = ("utf-8-sig", "gb18030")
CHUNK_BYTES = 1 << 20
DEFAULT_MAX_STORED_ERRORS = 10_000


class ImportFileError(Exception):
    """The file as a whole cannot be imported; the message tells the user why."""


class _Superseded(Exception):
    """Another run of the same job committed first; this run stops without writing."""


def max_stored_errors():
    return getattr(settings, "IMPORT_MAX_STORED_ERRORS", DEFAULT_MAX_STORED_ERRORS)


# ---------------------------------------------------------------- the file

def fingerprint(path):
    """(sha256, encoding) of a file, read in chunks. Raises ImportFileError for a file that is
    neither UTF-8 (with or without BOM) nor GBK text."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(ENCODINGS[0])()
    is_utf8 = True
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
                if is_utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        is_utf8 = False
    except OSError as exc:
        raise ImportFileError(_("The file cannot be read: %(error)s") % {"error": exc.strerror or exc}) from None
    if is_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if is_utf8:
        return digest.hexdigest(), ENCODINGS[0]
    for encoding in ENCODINGS[1:]:
        if _decodes(path, encoding):
            return digest.hexdigest(), encoding
    raise ImportFileError(_("The file is neither UTF-8 nor GBK text. Save it as \"CSV UTF-8\" and try again."))


def _decodes(path, encoding):
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class _CsvFile:
    """The records of a CSV file after its header, as (line, cells): ``line`` is the line where
    the record starts, counting the header as line 1, as a spreadsheet numbers its rows.
    Records whose cells are all blank are skipped (Excel leaves them at the end)."""

    def __init__(self, path, encoding):
        self.handle = open(path, newline="", encoding=encoding)
        self.reader = csv.reader(self.handle)
        try:
            header = next(self.reader)
        except StopIteration:
            self.close()
            raise ImportFileError(_("The file is empty.")) from None
        except csv.Error as exc:
            self.close()
            raise ImportFileError(_("The header cannot be read as CSV: %(error)s") % {"error": exc}) from None
        self.columns = [name.strip().lower() for name in header]

    def __iter__(self):
        line = self.reader.line_num + 1
        while True:
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    _("Row %(line)d cannot be read as CSV: %(error)s") % {"line": line, "error": exc}
                ) from None
            start, line = line, self.reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield start, cells

    def close(self):
        self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def check_columns(kind, columns):
    """Returns the columns that will be ignored; raises ImportFileError for a missing or
    repeated column."""
    named = [c for c in columns if c]
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        raise ImportFileError(_("These columns appear more than once: %(columns)s.") % {"columns": ", ".join(repeated)})
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in named]
    if missing:
        raise ImportFileError(
            _("The file has no %(columns)s column. The first row must name the columns.")
            % {"columns": ", ".join(missing)}
        )
    known = set(COLUMNS[kind])
    return [c for c in named if c not in known and not (kind == Kind.MEMBERS and c.startswith(ATTRIBUTE_PREFIX))]


def _row(columns, cells):
    """{column: stripped value} of the non-blank cells, or an error for surplus cells."""
    if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns):]):
        return None, {"": [_("Has %(cells)d cells but the header names %(columns)d columns.")
                          % {"cells": len(cells), "columns": len(columns)}]}
    row = {}
    for column, cell in zip(columns, cells):
        value = cell.strip()
        if column and value:
            row[column] = value
    return row, None


# ---------------------------------------------------------------- jobs

def store_upload(tenant, uploaded):
    """Save an uploaded file under IMPORT_DIR/<tenant id>/, hashing it on the way.
    Returns (path, sha256)."""
    folder = Path(settings.IMPORT_DIR) / str(tenant.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for chunk in uploaded.chunks():
            digest.update(chunk)
            handle.write(chunk)
    return path, digest.hexdigest()


def open_import(tenant, kind, path, file_name, sha256, created_by=None):
    """The unfinished job of the same file (same brand, kind and content) to resume, or a new
    job. Returns (job, resumed)."""
    with tenant_context(tenant):
        job = (
            ImportJob.objects.filter(kind=kind, file_sha256=sha256).exclude(status=Status.DONE)
            .order_by("-created_at", "-pk").first()
        )
        if job is not None:
            if job.file_path != str(path):
                previous = Path(job.file_path)
                ImportJob.objects.filter(pk=job.pk).update(file_path=str(path))
                job.file_path = str(path)
                if previous.is_relative_to(Path(settings.IMPORT_DIR)):
                    previous.unlink(missing_ok=True)
            return job, True
        job = ImportJob.objects.create(
            tenant=tenant, kind=kind, file_name=file_name[:255], file_path=str(path), file_sha256=sha256,
            created_by=created_by,
        )
        return job, False


def run_import(job, batch_size=None, on_progress=None):
    """Import the job's file from where it stopped. Returns the job as it ends.

    ``on_progress(job)`` is called once the rows are counted and after each committed batch.
    A file that cannot be imported marks the job failed with a message; errors in single rows
    are recorded in the job and never stop the import.
    """
    batch_size = batch_size or settings.IMPORT_BATCH_SIZE
    tenant = job.tenant
    with tenant_context(tenant), translation.override(tenant.default_language), timezone.override(tenant.zone):
        claimed = ImportJob.objects.filter(pk=job.pk).exclude(status=Status.DONE).update(
            status=Status.RUNNING, message="", updated_at=timezone.now()
        )
        job.refresh_from_db()
        if not claimed:
            return job
        try:
            _run(job, batch_size, on_progress or (lambda job: None))
        except _Superseded:
            job.refresh_from_db()
        except ImportFileError as exc:
            _fail(job, str(exc))
        except Exception as exc:
            _fail(job, _("The import stopped on an unexpected error: %(error)s") % {"error": exc})
            raise
        return job


def _fail(job, message):
    ImportJob.objects.filter(pk=job.pk).update(status=Status.FAILED, message=message, updated_at=timezone.now())
    job.status, job.message = Status.FAILED, message


def _run(job, batch_size, on_progress):
    sha256, encoding = fingerprint(job.file_path)
    if sha256 != job.file_sha256:
        raise ImportFileError(_("The file has changed since this import started. Start a new import with it."))
    with _CsvFile(job.file_path, encoding) as records:
        ignored = check_columns(job.kind, records.columns)
        if job.total_rows is None:
            job.total_rows = _count(job.file_path, encoding)
            ImportJob.objects.filter(pk=job.pk).update(total_rows=job.total_rows)
        on_progress(job)
        importer = (_MemberBatches if job.kind == Kind.MEMBERS else _OrderBatches)(job, records.columns)
        rows = iter(records)
        for _skipped in zip(range(job.rows_done), rows):
            pass
        for units in _batches(importer.units(rows), batch_size):
            importer.commit(units)
            on_progress(job)
    message = ""
    if ignored:
        message = _("These columns are not known and were ignored: %(columns)s.") % {"columns": ", ".join(ignored)}
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(status=Status.DONE, message=message, finished_at=now, updated_at=now)
    job.status, job.message, job.finished_at = Status.DONE, message, now


def _count(path, encoding):
    with _CsvFile(path, encoding) as records:
        return sum(1 for _record in records)


def _batches(units, batch_size):
    """Group units (a member's row, an order's rows) into batches of at least ``batch_size``
    rows; a unit is never split."""
    batch, rows = [], 0
    for unit in units:
        batch.append(unit)
        rows += len(unit)
        if rows >= batch_size:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


class _Batches:
    """Validates and writes one kind of row; ``commit`` makes a batch and the job's progress
    durable together."""

    write = None

    def __init__(self, job, columns):
        self.job = job
        self.tenant = job.tenant
        self.columns = columns

    def units(self, records):
        for record in records:
            yield [record]

    def commit(self, units):
        job = self.job
        items, errors, context = self.prepare(units)
        with transaction.atomic():
            outcomes, more = self.write(self.tenant, items) if items else ({}, {})
            errors.update(more)
            counts = {"created": 0, "updated": 0, "unchanged": 0}
            for outcome in outcomes.values():
                counts[outcome["status"]] += 1
            rejected = len({context["unit_of"][line] for line in errors})
            entries = [entry for line in sorted(errors) for entry in self.entries(line, errors[line], context)]
            stored = list(job.errors)
            room = max_stored_errors() - len(stored)
            if room > 0 and entries:
                stored.extend(entries[:room])
            fields = {
                "rows_done": job.rows_done + sum(len(unit) for unit in units),
                "created_count": job.created_count + counts["created"],
                "updated_count": job.updated_count + counts["updated"],
                "unchanged_count": job.unchanged_count + counts["unchanged"],
                "error_count": job.error_count + rejected,
                "updated_at": timezone.now(),
            }
            if len(stored) != len(job.errors):
                fields["errors"] = stored
            # The job row is the resume point: only the run that read it as it is may move it.
            if ImportJob.objects.filter(pk=job.pk, rows_done=job.rows_done).update(**fields) != 1:
                raise _Superseded()
        for name, value in fields.items():
            setattr(job, name, value)

    def entries(self, line, fields, context):
        external_id = context["external_ids"].get(line, "")
        for field, messages in fields.items():
            for message in messages:
                yield _entry(line, field, message, external_id)


def _is_message_list(messages):
    return isinstance(messages, list) and all(isinstance(m, str) for m in messages)


def _entry(line, field, message, external_id):
    return {"line": line, "field": "" if field == "non_field_errors" else field, "message": str(message),
            "external_id": external_id}


class _MemberBatches(_Batches):
    """One row, one member. Counts are of members."""

    write = staticmethod(services.upsert_members)

    def prepare(self, units):
        lines, datas, errors, external_ids = [], [], {}, {}
        for [(line, cells)] in units:
            row, error = _row(self.columns, cells)
            if error:
                errors[line] = error
                continue
            external_ids[line] = row.get("external_id", "")
            data = {c: row[c] for c in MEMBER_COLUMNS if c in row}
            attributes = {c[len(ATTRIBUTE_PREFIX):]: v for c, v in row.items() if c.startswith(ATTRIBUTE_PREFIX)}
            if attributes:
                data["attributes"] = attributes
            lines.append(line)
            datas.append(data)
        self._merge_attributes(datas)
        valid, invalid = validate_bulk(MemberUpsertSerializer, datas, {})
        for index, fields in invalid.items():
            errors[lines[index]] = fields
        context = {"external_ids": external_ids, "unit_of": {line: line for [(line, _cells)] in units}}
        return [(lines[index], data) for index, data in valid], errors, context

    def _merge_attributes(self, datas):
        """attr_* columns set their keys; the member's other attributes stay."""
        wanted = [d["external_id"] for d in datas if "attributes" in d and d.get("external_id")]
        if not wanted:
            return
        current = dict(Member.objects.filter(external_id__in=wanted).values_list("external_id", "attributes"))
        for data in datas:
            existing = current.get(data.get("external_id"))
            if "attributes" in data and isinstance(existing, dict):
                data["attributes"] = {**existing, **data["attributes"]}


class _OrderBatches(_Batches):
    """Consecutive rows with the same external_id are the lines of one order. Counts are of
    orders; a row error rejects its whole order."""

    write = staticmethod(services.ingest_orders)

    def units(self, records):
        index = self.columns.index("external_id")
        unit, unit_id = [], None
        for line, cells in records:
            order_id = cells[index].strip() if index < len(cells) else ""
            if unit and (order_id != unit_id or not order_id):
                yield unit
                unit = []
            unit.append((line, cells))
            unit_id = order_id
        if unit:
            yield unit

    def prepare(self, units):
        firsts, datas, errors = [], [], {}
        external_ids, line_numbers, unit_of, first_seen = {}, {}, {}, {}
        for unit in units:
            first = unit[0][0]
            rows = []
            for line, cells in unit:
                unit_of[line] = first
                row, error = _row(self.columns, cells)
                if error:
                    errors[line] = error
                rows.append(row or {})
            order_id = rows[0].get("external_id", "")
            external_ids[first] = order_id
            if order_id in first_seen:
                errors[first] = {"external_id": [
                    _("The rows of order %(id)s must be consecutive; it already appeared on row %(line)d.")
                    % {"id": order_id, "line": first_seen[order_id]}
                ]}
            elif order_id:
                first_seen[order_id] = first
            if any(line in errors for line, _cells in unit):
                continue
            data = {c: rows[0][c] for c in ORDER_COLUMNS if c in rows[0]}
            with_line = [(line, row) for (line, _cells), row in zip(unit, rows) if any(c in row for c in LINE_COLUMNS)]
            data["lines"] = [{c: row[c] for c in LINE_COLUMNS if c in row} for _line, row in with_line]
            line_numbers[first] = [line for line, _row in with_line]
            firsts.append(first)
            datas.append(data)
        valid, invalid = validate_bulk(OrderSerializer, datas, {})
        for index, fields in invalid.items():
            errors[firsts[index]] = fields
        context = {"external_ids": external_ids, "line_numbers": line_numbers, "unit_of": unit_of}
        return [(firsts[index], data) for index, data in valid], errors, context

    def entries(self, line, fields, context):
        external_id = context["external_ids"].get(context["unit_of"][line], "")
        for field, messages in fields.items():
            if field == "lines" and not _is_message_list(messages):
                # DRF reports a list field's errors by position, as a dict or a list of dicts.
                by_position = messages.items() if isinstance(messages, dict) else enumerate(messages)
                for position, line_errors in by_position:
                    line_number = context["line_numbers"][line][int(position)]
                    for line_field, line_messages in line_errors.items():
                        for message in line_messages:
                            yield _entry(line_number, line_field, message, external_id)
                continue
            for message in messages:
                yield _entry(line, field, message, external_id)


# ---------------------------------------------------------------- reading a job

def format_error(entry):
    """'row 17, mobile: Not a valid mobile number.'"""
    if entry.get("field"):
        return _("row %(line)s, %(field)s: %(message)s") % entry
    return _("row %(line)s: %(message)s") % entry


def template_columns(kind):
    """The header of an empty file of this kind, for the dashboard's sample download."""
    if kind == Kind.MEMBERS:
        return list(MEMBER_COLUMNS) + [f"{ATTRIBUTE_PREFIX}size"]
    return list(COLUMNS[kind])
