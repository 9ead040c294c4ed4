"""The demo brand: a fast-fashion chain with ten stores, their guides, and members whose orders
and interactions tell every lifecycle story. ``seed_demo`` is the one entry point; the
``seed_demo`` and ``bootstrap_demo`` management commands call it.

The same seed and as-of moment give the same members, orders, lines and events on PostgreSQL
and SQLite (see ``generator``). Large batches on PostgreSQL are loaded the way its manual
advises for bulk loading: secondary indexes and foreign keys of the four tables are dropped
and rebuilt around the load, inside the same transaction.
"""
import datetime
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.models import Staff, Store, Tenant
from scrm.services import create_staff, create_tenant
from scrm.tenancy import tenant_context

from ..models import Member
from ..signals import activity_recorded, demo_seeded, members_changed
from . import catalog, hashing
from .generator import MAX_MEMBER_NUMBER, MEMBER_PREFIX, Batch, Dialect, Generator

DEFAULT_SLUG = catalog.DEFAULT_SLUG
MAX_SEED = 2**40
BULK_LOAD_MIN_MEMBERS = 100_000
SIGNAL_CHUNK = 50_000
BULK_TABLES = ("members_member", "members_order", "members_orderline", "members_event")
_AFTER_MEMBER_PREFIX = MEMBER_PREFIX[:-1] + chr(ord(MEMBER_PREFIX[-1]) + 1)


class DemoError(Exception):
    """The demo cannot be seeded as asked; the message says why."""


@dataclass
class Login:
    username: str
    password: str
    role: str


@dataclass
class SeedResult:
    tenant: Tenant
    created_tenant: bool
    api_key: str | None
    logins: list
    counts: dict = field(default_factory=dict)
    timings: list = field(default_factory=list)


def login_username(slug, key):
    """Usernames are global, so only the default demo tenant gets the bare ones."""
    return key if slug == DEFAULT_SLUG else f"{slug}-{key}"


def demo_logins(tenant):
    """The demo logins that exist in ``tenant`` (with their demo passwords)."""
    wanted = {login_username(tenant.slug, key): (password, role) for key, role, password in catalog.LOGINS}
    found = set(
        Staff.objects.unscoped().filter(tenant=tenant, user__username__in=wanted).values_list("user__username", flat=True)
    )
    return [Login(username, *wanted[username]) for username in wanted if username in found]


def _demo_members(tenant):
    # The range on (tenant_id, external_id) uses the unique index whatever the column's collation.
    return Member.objects.unscoped().filter(
        tenant=tenant, external_id__gte=MEMBER_PREFIX, external_id__lt=_AFTER_MEMBER_PREFIX,
        external_id__startswith=MEMBER_PREFIX,
    )


def seed_demo(*, as_of, slug=DEFAULT_SLUG, members=3000, seed=1, name=catalog.BRAND_NAME, force_add=False,
              bulk_load=None, send_signals=True, log=None):
    """Seed the demo brand ``slug`` (created if missing) with ``members`` members and their
    orders, order lines and events, as of ``as_of`` (an aware datetime, or a date meaning the
    start of that day in the tenant's zone).

    A tenant that already has demo members is refused unless ``force_add``, which numbers the
    new members after the existing ones. ``bulk_load``: None decides by size (PostgreSQL only).
    """
    log = log or (lambda message: None)
    if members < 0:
        raise DemoError(_("The number of members cannot be negative."))
    if not 0 <= seed < MAX_SEED:
        raise DemoError(_("The seed must be between 0 and %(max)s.") % {"max": MAX_SEED - 1})
    now = timezone.now()
    timings = []

    def timed(stage, work):
        started = time.perf_counter()
        result = work()
        timings.append((stage, time.perf_counter() - started))
        log(f"{stage}: {timings[-1][1]:.1f}s" + (f", {result} rows" if isinstance(result, int) else ""))
        return result

    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(slug=slug).first()
        created_tenant = tenant is None
        api_key = None
        logins = []
        if created_tenant:
            _check_usernames_free(slug)
            owner_key, _role, owner_password = catalog.LOGINS[0]
            tenant, _owner, api_key = create_tenant(slug, name, login_username(slug, owner_key), owner_password)
            logins.append(Login(login_username(slug, owner_key), owner_password, "owner"))
        as_of = _as_of_moment(as_of, tenant)
        if as_of > now:
            raise DemoError(_("The as-of moment cannot be in the future."))

        first = 1
        if members:
            last_demo = _demo_members(tenant).order_by("-external_id").values_list("external_id", flat=True).first()
            if last_demo is not None:
                if not force_add:
                    raise DemoError(
                        _("Brand %(slug)s already has demo members; use --force-add to add %(count)s more after them.")
                        % {"slug": slug, "count": members}
                    )
                first = int(last_demo[len(MEMBER_PREFIX):]) + 1
        last = first + members - 1
        if last > MAX_MEMBER_NUMBER:
            raise DemoError(_("At most %(max)s demo members fit in one brand.") % {"max": MAX_MEMBER_NUMBER})

        with tenant_context(tenant):
            stores, guides, staff_logins = timed("stores and staff", lambda: _stores_and_guides(tenant))
        logins.extend(staff_logins)

        counts = {"members": 0, "orders": 0, "order_lines": 0, "events": 0}
        if members:
            offset = as_of.astimezone(tenant.zone).utcoffset()
            batch = Batch(
                tenant_id=tenant.pk, seed=seed, first=first, last=last, as_of=int(as_of.timestamp()),
                utc_offset=int(offset.total_seconds()), as_of_year=as_of.astimezone(tenant.zone).year,
                now=int(now.timestamp()),
            )
            counts = _generate(batch, stores, guides, bulk_load, timed, log)
        if members and send_signals:
            batch_members = _demo_members(tenant).filter(external_id__gte=f"{MEMBER_PREFIX}{first:08d}")
            member_ids = list(batch_members.values_list("pk", flat=True))
            transaction.on_commit(lambda: _announce(tenant.pk, member_ids))
        if send_signals:
            transaction.on_commit(lambda: demo_seeded.send(sender=Tenant, tenant_id=tenant.pk, as_of=as_of, seed=seed))

    return SeedResult(tenant, created_tenant, api_key, logins, counts, timings)


def _as_of_moment(as_of, tenant):
    if isinstance(as_of, datetime.datetime):
        if timezone.is_naive(as_of):
            raise DemoError(_("The as-of moment needs a time zone."))
        return as_of
    return datetime.datetime.combine(as_of, datetime.time.min, tzinfo=tenant.zone)


def _check_usernames_free(slug):
    wanted = [login_username(slug, key) for key, _r, _p in catalog.LOGINS]
    taken = list(get_user_model().objects.filter(username__in=wanted).values_list("username", flat=True))
    if taken:
        raise DemoError(
            _("The usernames %(names)s are taken; seed under another --tenant slug.") % {"names": ", ".join(sorted(taken))}
        )


def _stores_and_guides(tenant):
    """The tenant's active stores and their guides; a tenant without stores gets the demo chain.
    Returns (stores [(id, code, city, per_mille, guide_count)], guides [(store_idx, slot, staff_id)], logins)."""
    existing = list(Store.objects.filter(active=True).order_by("code"))
    if existing:
        shares = [1000 // len(existing)] * len(existing)
        shares[0] += 1000 - sum(shares)
        guides_of = Staff.objects.filter(role=Staff.Role.GUIDE, active=True).order_by("pk")
        guide_ids = [list(guides_of.filter(stores=store).values_list("pk", flat=True)) for store in existing]
        stores = [(s.pk, s.code, s.city, share, len(ids)) for s, share, ids in zip(existing, shares, guide_ids)]
        guides = [(idx, slot, pk) for idx, ids in enumerate(guide_ids) for slot, pk in enumerate(ids)]
        return stores, guides, []
    return _create_demo_chain(tenant)


def _create_demo_chain(tenant):
    slug = tenant.slug
    passwords = {key: (role, password) for key, role, password in catalog.LOGINS}
    logins = []

    def staff(key, fallback_username, role, stores, person):
        if key is not None:
            username = login_username(slug, key)
            password = passwords[key][1]
            logins.append(Login(username, password, passwords[key][0]))
        else:
            username, password = fallback_username, None
        return create_staff(tenant, username, password, _person_name(person), role, stores)

    Store.objects.bulk_create([
        Store(tenant=tenant, code=code, name=name, city=city, region=region)
        for code, name, city, region, _guides, _share in catalog.STORES
    ])
    by_code = {s.code: s for s in Store.objects.all()}
    staff("operator", None, Staff.Role.OPERATOR, [], 1)
    stores, guides = [], []
    for idx, (code, _name, city, _region, guide_count, share) in enumerate(catalog.STORES):
        store = by_code[code]
        prefix = f"{slug}-{code.lower()}"
        staff("manager" if idx == 0 else None, f"{prefix}-manager", Staff.Role.STORE_MANAGER, [store], 100 + idx)
        for slot in range(guide_count):
            guide = staff(
                "guide" if idx == 0 and slot == 0 else None, f"{prefix}-guide{slot + 1}", Staff.Role.GUIDE, [store],
                1000 + idx * 10 + slot,
            )
            guides.append((idx, slot, guide.pk))
        stores.append((store.pk, code, city, share, guide_count))
    return stores, guides, logins


def _person_name(number):
    def pick(purpose, options):
        return options[(hashing.hashint8extended(number, purpose) & 0x7FFFFFFF) % len(options)]

    chars = catalog.FEMALE_CHARS if number % 3 else catalog.MALE_CHARS
    given = pick(2, chars) + (pick(3, chars) if pick(4, "01") == "1" else "")
    return pick(1, catalog.SURNAMES) + given


def _generate(batch, stores, guides, bulk_load, timed, log):
    dialect = Dialect(connection.vendor)
    generator = Generator(dialect, batch)
    members = batch.last - batch.first + 1
    if not dialect.postgres:
        connection.ensure_connection()
        hashing.register(connection.connection)
    with connection.cursor() as cursor:
        generator.set_stores(stores, guides)
        generator.create_temp_tables(cursor)
        first_member_id = _reserve_member_ids(cursor, dialect, members)
        timed("plan members", lambda: _run(cursor, generator.plan_sql(first_member_id)))
        if Member.objects.unscoped().filter(tenant_id=batch.tenant_id).exists():
            _run(cursor, generator.clear_taken_mobiles_sql())
        if dialect.postgres:
            cursor.execute("ANALYZE demo_plan")
        cursor.execute("SELECT coalesce(max(id), 0) FROM members_order")
        last_order_id = cursor.fetchone()[0]
        bulk = dialect.postgres and (bulk_load if bulk_load is not None else _worth_bulk_loading(cursor, members))
        deferred = timed("drop indexes and foreign keys", lambda: _drop_structures(cursor)) if bulk else None
        counts = {"members": timed("members", lambda: _run(cursor, generator.members_sql()))}
        counts["orders"] = timed("orders", lambda: _run(cursor, generator.orders_sql()))
        counts["orders"] += timed("walk-in orders", lambda: _run(cursor, generator.orders_sql(walk_ins=True)))
        counts["order_lines"] = timed("order lines", lambda: _run(cursor, generator.lines_sql(last_order_id)))
        counts["events"] = timed("events", lambda: _run(cursor, generator.events_sql()))
        counts["events"] += timed("contact events", lambda: _run(cursor, generator.contact_events_sql()))
        if dialect.postgres:
            # Fresh statistics now also give the foreign-key validations below good join plans.
            timed("analyze", lambda: cursor.execute(f"ANALYZE {', '.join(BULK_TABLES)}"))
        if deferred is not None:
            timed("rebuild indexes and foreign keys", lambda: _restore_structures(cursor, deferred, log))
        generator.drop_temp_tables(cursor)
    return counts


def _reserve_member_ids(cursor, dialect, count):
    """The first of ``count`` consecutive member ids no one else will use, so that the plan can
    carry each member's id instead of looking it up after the insert."""
    if dialect.postgres:
        # Other writers wait for this transaction; they would take ids from the same sequence.
        cursor.execute("LOCK TABLE members_member IN EXCLUSIVE MODE")
        cursor.execute("SELECT pg_get_serial_sequence('members_member', 'id')")
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s)", [sequence])
        first = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
        return first
    # SQLite: this transaction already holds the write lock; AUTOINCREMENT never reuses an id.
    cursor.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'members_member'), 0),"
        " coalesce((SELECT max(id) FROM members_member), 0)) + 1"
    )
    return cursor.fetchone()[0]


def _run(cursor, sql):
    cursor.execute(sql)
    return cursor.rowcount


def _worth_bulk_loading(cursor, members):
    """Rebuilding the indexes costs time per row already there; maintaining them costs more per
    row added. Bulk-load when the batch is large and at least doubles the orders table."""
    if members < BULK_LOAD_MIN_MEMBERS:
        return False
    cursor.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'members_order'::regclass")
    return members * 8 >= cursor.fetchone()[0]


def _drop_structures(cursor):
    """Drop the secondary indexes, unique constraints and foreign keys of the bulk tables (not the
    primary keys, nor a unique constraint another table's foreign key relies on); return what it
    takes to put them back exactly."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c
        WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('u', 'f')
          AND NOT (c.contype = 'u' AND EXISTS (
              SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid))
        ORDER BY c.contype DESC, c.conname
        """,
        [list(BULK_TABLES)],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
        ORDER BY 1
        """,
        [list(BULK_TABLES)],
    )
    indexes = cursor.fetchall()
    quote = connection.ops.quote_name
    # Rows written earlier in this transaction (the stores and staff) have deferred foreign-key
    # checks pending, and PostgreSQL alters no table with pending checks: run them now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for table, name, _definition, _kind in constraints:
        cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {quote(name)}")
    return constraints, indexes


def _restore_structures(cursor, deferred, log):
    constraints, indexes = deferred
    quote = connection.ops.quote_name
    cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
    unique = [c for c in constraints if c[3] == "u"]
    foreign = [c for c in constraints if c[3] == "f"]
    for table, name, definition, _kind in unique:
        cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
    for _name, definition in indexes:
        cursor.execute(definition)
    # Validating a foreign key is one join over the table, far cheaper than a check per inserted row;
    # memory for the join's hash table keeps it in one pass.
    cursor.execute("SET LOCAL work_mem = '512MB'")
    for table, name, definition, _kind in foreign:
        cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    log(f"rebuilt {len(unique)} unique constraints, {len(indexes)} indexes and {len(foreign)} foreign keys")


def _announce(tenant_id, member_ids):
    for start in range(0, len(member_ids), SIGNAL_CHUNK):
        chunk = member_ids[start:start + SIGNAL_CHUNK]
        members_changed.send(sender=Member, tenant_id=tenant_id, member_ids=chunk)
        activity_recorded.send(sender=Member, tenant_id=tenant_id, member_ids=chunk)
