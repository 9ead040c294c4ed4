"""The demo brand's members, orders, order lines and events, written as set-based SQL.

Every value is a pure function of (seed, member number, order number, ...) computed with
PostgreSQL's ``hashint8extended``; on SQLite the same function is registered from Python
(``hashing.hashint8extended``), so both databases run the same statements and get the same rows.
The statements differ only in the few spots a ``Dialect`` covers (series, timestamps, padding,
picking from a constant list). Lookups are constant lists rather than joins, and each random value
is computed once in a subquery the planner may not merge (``Dialect.fence``): that is what makes
the PostgreSQL path fast enough for a million members.

Keys: member number ``n`` (1, 2, ...); order key ``n * 100 + k`` (k = 1..38 for a member's own
orders, 99 for a walk-in order); line key ``order key * 8 + j``; event key ``n * 1000 + k``.
External ids carry the key: ``DM00000042``, ``DO0000004203``, ``DE000000042007``.
"""
import json
from dataclasses import dataclass

from . import catalog

DAY = 86400
SPAN_DAYS = 730
ORDER_SLOTS = 100
WALK_IN_SLOT = 99
LINE_SLOTS = 8
MAX_LINES = 4
EVENT_SLOTS = 1000
CONTACT_DELETED_SLOT = 999
PRODUCTS_PER_CATEGORY = 12
MAX_MEMBER_NUMBER = 99_999_999

MEMBER_PREFIX, ORDER_PREFIX, EVENT_PREFIX = "DM", "DO", "DE"

STORY_KEYS = [s[0] for s in catalog.STORIES]
# Youngest membership (days) each story needs to be believable, e.g. "gone" needs a long past.
STORY_MIN_AGE_DAYS = {
    "never": 1, "one_off": 3, "growing": 20, "regular": 120, "drifting": 240, "gone": 260, "won_back": 420,
}
# Chance (per mille) that a member of the story has deleted their guide on WeCom.
STORY_DELETED_PER_MILLE = {
    "never": 20, "one_off": 20, "growing": 10, "regular": 5, "drifting": 50, "gone": 220, "won_back": 0,
}


def _quote(text):
    return "'" + str(text).replace("'", "''") + "'"


class Dialect:
    """What differs between PostgreSQL and SQLite in the generating statements."""

    def __init__(self, vendor):
        self.postgres = vendor == "postgresql"

    def series(self, start, stop, alias):
        if self.postgres:
            return f"generate_series({int(start)}::bigint, {int(stop)}::bigint) AS {alias}(n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT {int(start)} UNION ALL SELECT n + 1 FROM s WHERE n < {int(stop)}) "
            f"SELECT n FROM s) AS {alias}"
        )

    def upto(self, count_sql, alias):
        """A join producing rows k = 1..count for each row on the left."""
        if self.postgres:
            return f"CROSS JOIN LATERAL generate_series(1, {count_sql}) AS {alias}(k)"
        return f"JOIN demo_numbers {alias} ON {alias}.k <= {count_sql}"

    @staticmethod
    def upto_small(count_sql, alias, maximum):
        """Like upto for a small maximum: a constant list rescanned per row beats a function call per row."""
        numbers = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(1, maximum + 1))
        return f"JOIN ({numbers}) {alias} ON {alias}.k <= {count_sql}"

    def fence(self):
        """Keeps a subquery from being merged into its parent, so each random value is computed once."""
        return "OFFSET 0" if self.postgres else "LIMIT -1 OFFSET 0"

    def ts(self, epoch_sql):
        return f"to_timestamp({epoch_sql})" if self.postgres else f"datetime({epoch_sql}, 'unixepoch')"

    def date(self, y, m, d):
        if self.postgres:
            return f"make_date(CAST({y} AS int), CAST({m} AS int), CAST({d} AS int))"
        return f"printf('%04d-%02d-%02d', {y}, {m}, {d})"

    def pad(self, number_sql, width):
        if self.postgres:
            return f"lpad(CAST({number_sql} AS text), {int(width)}, '0')"
        return f"printf('%0{int(width)}d', {number_sql})"

    def jsonb(self, text_sql):
        return f"CAST({text_sql} AS jsonb)" if self.postgres else text_sql

    def choose(self, values, index_sql, kind="text"):
        """values[index] for a constant list, without a join: an array on PostgreSQL, JSON on SQLite."""
        if self.postgres:
            items = ", ".join("NULL" if v is None else (str(int(v)) if kind == "bigint" else _quote(v)) for v in values)
            return f"(ARRAY[{items}]::{kind}[])[CAST({index_sql} AS int) + 1]"
        return f"json_extract({_quote(json.dumps(list(values), ensure_ascii=False))}, '$[' || ({index_sql}) || ']')"

    def greatest(self, *args):
        return f"{'greatest' if self.postgres else 'max'}({', '.join(args)})"

    def least(self, *args):
        return f"{'least' if self.postgres else 'min'}({', '.join(args)})"


@dataclass
class Batch:
    tenant_id: int
    seed: int
    first: int  # first member number of this batch
    last: int
    as_of: int  # epoch seconds
    utc_offset: int  # seconds east of UTC of the tenant's zone, for shop hours
    as_of_year: int
    now: int


class Generator:
    def __init__(self, dialect, batch):
        self.d = dialect
        self.b = batch
        self.store_count = None

    # ---------------------------------------------------------------- randomness

    def u(self, key, purpose):
        """A uniform integer in [0, 2^31) for (key, purpose) under this seed."""
        return f"(hashint8extended({key}, {int(self.b.seed) * 1000 + purpose}) & 2147483647)"

    def pick(self, key, purpose, n):
        return f"({self.u(key, purpose)} % {int(n)})"

    @staticmethod
    def thresholds(roll, shares, values=None):
        """CASE choosing values[i] with probability shares[i] / sum(shares) from a roll in [0, sum)."""
        values = range(len(shares)) if values is None else values
        parts, bound = [], 0
        for share, value in list(zip(shares, values))[:-1]:
            bound += share
            parts.append(f"WHEN {roll} < {bound} THEN {value}")
        return f"CASE {' '.join(parts)} ELSE {list(values)[-1]} END"

    def category(self, roll):
        return self.thresholds(roll, [c[1] for c in catalog.CATEGORIES])

    def feistel(self, n):
        """A fixed permutation of 0..10^8-1, so that mobile numbers of different members never clash."""
        x = f"({n} % 100000000)"
        left, right = f"({x} / 10000)", f"({x} % 10000)"
        for round_ in range(3):
            # A fixed key (not the seed): batches seeded with different seeds stay clash-free too.
            f = f"(hashint8extended({right}, {900 + round_}) & 2147483647) % 10000"
            left, right = right, f"(({left} + {f}) % 10000)"
        return f"({left} * 10000 + {right})"

    # ---------------------------------------------------------------- lookups and the plan table

    def set_stores(self, stores, guides):
        """stores: [(store_id, code, city, per_mille, guide_count)]; guides: [(store_idx, slot, staff_id)]."""
        if sum(store[3] for store in stores) != 1000:
            raise ValueError("store shares must add up to 1000 per mille")
        self.store_count = len(stores)
        self.store_ids = [store[0] for store in stores]
        self.store_cities = [store[2] for store in stores]
        self.store_by_mille = [idx for idx, store in enumerate(stores) for _ in range(store[3])]
        by_store = {}
        for store_idx, slot, staff_id in sorted(guides):
            by_store.setdefault(store_idx, []).append(staff_id)
        # A store without guides gets one empty slot, so that its members and orders have no guide.
        self.guide_counts = [len(by_store.get(idx, [])) or 1 for idx in range(len(stores))]
        self.guide_offsets, self.guide_ids = [], []
        for idx in range(len(stores)):
            self.guide_offsets.append(len(self.guide_ids))
            self.guide_ids.extend(by_store.get(idx) or [None])

    def guide_of(self, store_idx, roll):
        d = self.d
        slot = f"{roll} % {d.choose(self.guide_counts, store_idx, 'bigint')}"
        return d.choose(self.guide_ids, f"{d.choose(self.guide_offsets, store_idx, 'bigint')} + {slot}", "bigint")

    def create_temp_tables(self, cursor):
        self.drop_temp_tables(cursor)
        if not self.d.postgres:
            cursor.execute("CREATE TEMP TABLE demo_numbers (k int PRIMARY KEY)")
            cursor.executemany("INSERT INTO demo_numbers VALUES (%s)", [(k,) for k in range(1, EVENT_SLOTS)])
        cursor.execute(
            "CREATE TEMP TABLE demo_plan (n bigint PRIMARY KEY, member_id bigint, external_id text, name text,"
            " mobile text, gender text, birthday date, city text, joined bigint, channel text, store_idx int,"
            " store_id bigint, guide_id bigint, story int, fav int, orders int, c1 int, s1 bigint, e1 bigint,"
            " s2 bigint, e2 bigint, deleted int, changed bigint, events int, ev_end bigint, walk_in int)"
        )

    @staticmethod
    def drop_temp_tables(cursor):
        for table in ("demo_plan", "demo_numbers"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    SKUS = [
        (f"UT-{category[:2].upper()}{slot + 1:02d}", name, category, price * 100)
        for category, _share in catalog.CATEGORIES
        for slot, (name, price) in enumerate(catalog.PRODUCTS[category])
    ]

    # ---------------------------------------------------------------- members

    def plan_sql(self, first_member_id):
        """One row per member: the profile and the story its orders and events will tell. Member ids
        are given here (first_member_id, first_member_id + 1, ...) from a reserved range."""
        d, b = self.d, self.b
        A = b.as_of
        stories = catalog.STORIES

        def by_story(mapping):
            return "CASE story " + " ".join(f"WHEN {i} THEN {mapping[key]}" for i, key in enumerate(STORY_KEYS)) + " END"

        min_age = by_story({k: v * DAY for k, v in STORY_MIN_AGE_DAYS.items()})
        order_min = by_story({s[0]: s[2][0] for s in stories})
        order_span = by_story({s[0]: s[2][1] - s[2][0] + 1 for s in stories})
        event_min = by_story({s[0]: s[3][0] for s in stories})
        event_span = by_story({s[0]: s[3][1] - s[3][0] + 1 for s in stories})
        deleted_per_mille = by_story(STORY_DELETED_PER_MILLE)
        story = {key: i for i, key in enumerate(STORY_KEYS)}
        month = 30 * DAY

        rolls = f"""
            SELECT g.n,
                {self.pick('g.n', 1, 100)} AS r_story, {self.pick('g.n', 2, 1000000)} AS r_join,
                {self.pick('g.n', 3, 1000)} AS r_store, {self.u('g.n', 4)} AS r_guide,
                {self.pick('g.n', 5, 100)} AS r_gender, {self.pick('g.n', 6, len(catalog.SURNAMES))} AS r_sur,
                {self.u('g.n', 7)} AS r_g1, {self.u('g.n', 8)} AS r_g2, {self.pick('g.n', 9, 100)} AS r_two,
                {self.pick('g.n', 10, 100)} AS r_city, {self.pick('g.n', 11, len(catalog.CITIES))} AS r_city2,
                {self.pick('g.n', 12, 100)} AS r_bday, {self.pick('g.n', 13, 28)} AS r_age,
                {self.pick('g.n', 14, 12)} AS r_month, {self.pick('g.n', 15, 28)} AS r_day,
                {self.pick('g.n', 16, 100)} AS r_channel, {self.pick('g.n', 17, len(catalog.MOBILE_PREFIXES))} AS r_prefix,
                {self.u('g.n', 18)} AS r_orders, {self.u('g.n', 19)} AS r_events,
                {self.pick('g.n', 20, 1000)} AS r_s, {self.pick('g.n', 21, 1000)} AS r_e,
                {self.pick('g.n', 22, 1000)} AS r_s2, {self.pick('g.n', 23, 1000)} AS r_e2,
                {self.pick('g.n', 24, 3)} AS r_c2, {self.pick('g.n', 25, 1000)} AS r_del,
                {self.pick('g.n', 26, 1000)} AS r_delt, {self.pick('g.n', 27, 100)} AS r_fav,
                {self.pick('g.n', 28, 100)} AS r_walk_in, {self.pick('g.n', 29, len(catalog.WALK_IN_PREFIXES))} AS r_walk_prefix,
                {self.feistel('g.n')} AS tail
            FROM {d.series(b.first, b.last, 'g')}
            {d.fence()}"""
        with_story = f"""
            SELECT r.*, {self.thresholds('r.r_story', [s[1] for s in stories])} AS story,
                {self.category('r.r_fav')} AS fav, {d.choose(self.store_by_mille, 'r.r_store', 'bigint')} AS store_idx
            FROM ({rolls}) r {d.fence()}"""
        profile = f"""
            SELECT s.*,
                {A} - ({min_age} + s.r_join * ({SPAN_DAYS * DAY} - {min_age}) / 1000000) AS joined,
                {order_min} + s.r_orders % ({order_span}) AS orders,
                {event_min} + s.r_events % ({event_span}) AS events,
                CASE WHEN s.r_del < {deleted_per_mille} THEN 1 ELSE 0 END AS deleted
            FROM ({with_story}) s {d.fence()}"""
        # First and last order of each phase (phase 2 only for won-back members), by story.
        first = f"p.joined + {month} * p.r_s / 1000"
        timeline = f"""
            SELECT p.*,
                CASE WHEN p.story = {story['won_back']} THEN p.orders - 1 - p.r_c2 ELSE p.orders END AS c1,
                CASE p.story
                    WHEN {story['never']} THEN NULL
                    WHEN {story['one_off']} THEN p.joined + ({A} - p.joined) * p.r_e / 1000
                    WHEN {story['growing']} THEN p.joined + ({A} - p.joined) * p.r_s / 2000
                    ELSE {first} END AS s1,
                CASE p.story
                    WHEN {story['never']} THEN NULL
                    WHEN {story['one_off']} THEN p.joined + ({A} - p.joined) * p.r_e / 1000
                    WHEN {story['growing']} THEN p.joined + ({A} - p.joined) * p.r_s / 2000
                        + ({A} - p.joined - ({A} - p.joined) * p.r_s / 2000) * (500 + p.r_e / 2) / 1000
                    WHEN {story['regular']} THEN {A} - {45 * DAY} * p.r_e / 1000
                    WHEN {story['drifting']} THEN {A} - {65 * DAY} - {110 * DAY} * p.r_e / 1000
                    WHEN {story['gone']} THEN {first} + ({A - 190 * DAY} - ({first})) * (300 + 7 * p.r_e / 10) / 1000
                    ELSE {first} + ({A - 240 * DAY} - ({first})) * (200 + 8 * p.r_e / 10) / 1000 END AS e1,
                CASE WHEN p.story = {story['won_back']} THEN {A - 45 * DAY} + {20 * DAY} * p.r_s2 / 1000 END AS s2,
                CASE WHEN p.story = {story['won_back']} THEN {A} - {20 * DAY} * p.r_e2 / 1000 END AS e2
            FROM ({profile}) p {d.fence()}"""
        last_activity = d.greatest("t.joined", "coalesce(t.e2, t.e1, t.joined)")
        changed = f"{last_activity} + ({A} - {last_activity}) * t.r_delt / 1000"
        gender = self.thresholds("t.r_gender", [68, 27, 5], ["'female'", "'male'", "'unknown'"])
        female, male = catalog.FEMALE_CHARS, catalog.MALE_CHARS

        def given(chars):
            return (
                f"{d.choose(chars, f't.r_g1 % {len(chars)}')}"
                f" || CASE WHEN t.r_two < 70 THEN {d.choose(chars, f't.r_g2 % {len(chars)}')} ELSE '' END"
            )

        return f"""
            INSERT INTO demo_plan (n, member_id, external_id, name, mobile, gender, birthday, city, joined, channel,
                store_idx, store_id, guide_id, story, fav, orders, c1, s1, e1, s2, e2, deleted, changed,
                events, ev_end, walk_in)
            SELECT t.n, {int(first_member_id) - int(b.first)} + t.n,
                '{MEMBER_PREFIX}' || {d.pad('t.n', 8)},
                {d.choose(catalog.SURNAMES, 't.r_sur')}
                    || CASE WHEN t.r_gender < 68 OR (t.r_gender >= 95 AND t.r_g1 % 2 = 0) THEN {given(female)}
                       ELSE {given(male)} END,
                {d.choose(catalog.MOBILE_PREFIXES, 't.r_prefix')} || {d.pad('t.tail', 8)},
                {gender},
                CASE WHEN t.r_bday < 80 THEN {d.date(f'{b.as_of_year - 18} - t.r_age', 't.r_month + 1', 't.r_day + 1')} END,
                CASE WHEN t.r_city < 85 THEN {d.choose(self.store_cities, 't.store_idx')}
                     ELSE {d.choose(catalog.CITIES, 't.r_city2')} END,
                t.joined,
                {d.choose([name for name, share in catalog.CHANNELS for _ in range(share)], 't.r_channel')},
                t.store_idx, {d.choose(self.store_ids, 't.store_idx', 'bigint')}, {self.guide_of('t.store_idx', 't.r_guide')},
                t.story, t.fav, t.orders, t.c1, t.s1, t.e1, t.s2, t.e2, t.deleted,
                CASE WHEN t.deleted = 1 THEN {changed} END,
                t.events,
                CASE WHEN t.deleted = 1 THEN {changed}
                     WHEN t.story = {story['gone']} THEN {d.least(f'{A}', f't.e1 + {45 * DAY}')}
                     ELSE {A} END,
                CASE WHEN t.r_walk_in < 25 THEN 1 + t.r_walk_prefix ELSE 0 END
            FROM ({timeline}) t
        """

    def clear_taken_mobiles_sql(self):
        """A member of the tenant may already have the number: the demo member then has none."""
        return f"""
            UPDATE demo_plan SET mobile = NULL
            WHERE mobile IN (SELECT mobile FROM members_member WHERE tenant_id = {int(self.b.tenant_id)} AND mobile IS NOT NULL)
        """

    def members_sql(self):
        d, b = self.d, self.b
        now = d.ts(b.now)
        return f"""
            INSERT INTO members_member (id, tenant_id, external_id, name, mobile, gender, birthday, city, joined_at,
                source_channel, home_store_id, owner_guide_id, contact_status, contact_status_changed_at,
                attributes, created_at, updated_at)
            SELECT member_id, {int(b.tenant_id)}, external_id, name, mobile, gender, birthday, city, {d.ts('joined')},
                channel, store_id, guide_id,
                CASE WHEN deleted = 1 THEN 'deleted_by_customer' ELSE 'active' END,
                CASE WHEN deleted = 1 THEN {d.ts('changed')} END,
                {d.jsonb("'{}'")}, {now}, {now}
            FROM demo_plan ORDER BY n
        """

    # ---------------------------------------------------------------- orders and lines

    def line_roll_count(self, okey):
        return self.pick(okey, 44, 100)

    @classmethod
    def line_count(cls, roll):
        return cls.thresholds(roll, [50, 30, 14, 6], [1, 2, 3, 4])

    def line_roll(self, lkey, suffix=""):
        """One random value per order line; its digits choose the product and the quantity."""
        return f"{self.u(lkey, 45)} AS h_line{suffix}"

    def line_sku(self, fav, suffix=""):
        h = f"h_line{suffix}"
        category = self.thresholds(f"({h} / 100 % 100)", [c[1] for c in catalog.CATEGORIES])
        return (
            f"(CASE WHEN {h} % 100 < 50 THEN {fav} ELSE {category} END) * {PRODUCTS_PER_CATEGORY}"
            f" + {h} / 10000 % {PRODUCTS_PER_CATEGORY}"
        )

    def line_quantity(self, suffix=""):
        return self.thresholds(f"(h_line{suffix} / 120000 % 100)", [86, 11, 3], [1, 2, 3])

    def orders_sql(self, walk_ins=False):
        """Orders of the batch's members (or its walk-in customers), their totals the sum of the
        lines the lines statement will write, less the discount."""
        d, b = self.d, self.b
        A, off = b.as_of, b.utc_offset
        if walk_ins:
            source = f"""
                SELECT p.n * {ORDER_SLOTS} + {WALK_IN_SLOT} AS okey, CAST(NULL AS bigint) AS member_id,
                    '' AS member_external_id,
                    {d.choose(catalog.WALK_IN_PREFIXES, 'p.walk_in - 1')} || {d.pad(self.feistel('p.n'), 8)} AS mobile, p.fav,
                    {self.pick('p.n', 61, self.store_count)} AS home_idx, CAST(NULL AS bigint) AS owner_id,
                    {A - 365 * DAY} + {365 * DAY} * {self.pick('p.n', 62, 1000)} / 1000 AS t_raw, 0 AS joined
                FROM demo_plan p WHERE p.walk_in > 0"""
        else:
            okey = f"p.n * {ORDER_SLOTS} + k.k"
            phase1 = "k.k <= p.c1"
            s = f"CASE WHEN {phase1} THEN p.s1 ELSE p.s2 END"
            e = f"CASE WHEN {phase1} THEN p.e1 ELSE p.e2 END"
            idx = f"CASE WHEN {phase1} THEN k.k ELSE k.k - p.c1 END"
            cnt = f"CASE WHEN {phase1} THEN p.c1 ELSE p.orders - p.c1 END"
            step = f"({e} - {s}) / {d.greatest(f'{cnt} - 1', '1')}"
            source = f"""
                SELECT {okey} AS okey, p.member_id, p.external_id AS member_external_id, '' AS mobile, p.fav,
                    p.store_idx AS home_idx, p.guide_id AS owner_id,
                    {s} + {step} * ({idx} - 1)
                        + CASE WHEN {idx} < {cnt} THEN {step} * {self.pick(okey, 39, 1000)} / 2000 ELSE 0 END AS t_raw,
                    p.joined
                FROM demo_plan p {d.upto('p.orders', 'k')}"""
        lkeys = [f"o.okey * {LINE_SLOTS} + {j}" for j in range(1, MAX_LINES + 1)]
        # Two random values give several small choices each through their decimal digits.
        rolls = f"""
            SELECT o.*,
                {self.u('o.okey', 40)} AS h_order, {self.u('o.okey', 51)} AS h_money,
                {self.pick('o.okey', 41, self.store_count)} AS r_store, {self.u('o.okey', 43)} AS r_slot_guide,
                {self.line_roll_count('o.okey')} AS r_lines, {self.pick('o.okey', 53, 43200)} AS r_time,
                {', '.join(self.line_roll(lkey, str(j)) for j, lkey in enumerate(lkeys, 1))}
            FROM ({source}) o {d.fence()}"""
        rolls = f"""
            SELECT r0.*,
                r0.h_order % 100 AS r_away, r0.h_order / 100 % 100 AS r_own,
                r0.h_order / 10000 % 100 AS r_disc, r0.h_order / 1000000 % 16 AS r_disc_pct,
                r0.h_money % 1000 AS r_status, r0.h_money / 1000 % 41 AS r_refund,
                {self.line_count('r0.r_lines')} AS lines,
                {', '.join(f"{self.line_sku('r0.fav', str(j))} AS sku{j}, {self.line_quantity(str(j))} AS q{j}"
                           for j in range(1, MAX_LINES + 1))}
            FROM ({rolls}) r0 {d.fence()}"""
        placed_local_day = f"(r.t_raw + {off}) / {DAY} * {DAY} - {off}"
        placed = d.least(d.greatest(f"{placed_local_day} + 36000 + r.r_time", "r.joined + 300"), f"{A - 60}")
        prices = [sku[3] for sku in self.SKUS]
        subtotal = " + ".join(
            f"CASE WHEN r.lines >= {j} THEN {d.choose(prices, f'r.sku{j}', 'bigint')} * r.q{j} ELSE 0 END"
            for j in range(1, MAX_LINES + 1)
        )
        priced = f"""
            SELECT r.*,
                CASE WHEN r.r_away < 88 THEN r.home_idx ELSE r.r_store END AS store_idx,
                {placed} AS placed, {subtotal} AS subtotal
            FROM ({rolls}) r {d.fence()}"""
        discount = f"CASE WHEN x.r_disc < 30 THEN x.subtotal * (5 + x.r_disc_pct) / 10000 * 100 ELSE 0 END"
        settled = f"""
            SELECT x.*, x.subtotal - {discount} AS total_cents, {discount} AS discount_cents
            FROM ({priced}) x {d.fence()}"""
        status = "CASE WHEN y.r_status < 30 THEN 'refunded' WHEN y.r_status < 50 THEN 'partially_refunded' ELSE 'paid' END"
        refunded = (
            "CASE WHEN y.r_status < 30 THEN y.total_cents "
            "WHEN y.r_status < 50 THEN y.total_cents * (20 + y.r_refund) / 100 ELSE 0 END"
        )
        now = d.ts(b.now)
        return f"""
            INSERT INTO members_order (tenant_id, external_id, member_id, member_external_id, mobile, store_id,
                guide_id, placed_at, status, total, discount, refunded_amount, created_at, updated_at)
            SELECT {int(b.tenant_id)}, '{ORDER_PREFIX}' || {d.pad('y.okey', 10)}, y.member_id, y.member_external_id,
                y.mobile, {d.choose(self.store_ids, 'y.store_idx', 'bigint')},
                CASE WHEN y.store_idx = y.home_idx AND y.r_own < 85 AND y.owner_id IS NOT NULL THEN y.owner_id
                     ELSE {self.guide_of('y.store_idx', 'y.r_slot_guide')} END,
                {d.ts('y.placed')}, {status}, y.total_cents / 100.0, y.discount_cents / 100.0, ({refunded}) / 100.0,
                {now}, {now}
            FROM ({settled}) y
        """

    def lines_sql(self, after_order_id):
        d, b = self.d, self.b
        first_key = b.first * ORDER_SLOTS
        okey = f"CAST(substr(o.external_id, {len(ORDER_PREFIX) + 1}) AS bigint)"
        orders = f"""
            SELECT o.id AS order_id, {okey} AS okey FROM members_order o
            WHERE o.tenant_id = {int(b.tenant_id)} AND o.id > {int(after_order_id)}
                AND o.external_id >= '{ORDER_PREFIX}{first_key:010d}'
                AND o.external_id < '{ORDER_PREFIX}{(b.last + 1) * ORDER_SLOTS:010d}'
            {d.fence()}"""
        counted = f"""
            SELECT o.*, {self.line_roll_count('o.okey')} AS r_lines,
                {self.pick(f'o.okey / {ORDER_SLOTS}', 27, 100)} AS r_fav
            FROM ({orders}) o {d.fence()}"""
        counted = f"""
            SELECT c0.*, {self.line_count('c0.r_lines')} AS lines, {self.category('c0.r_fav')} AS fav
            FROM ({counted}) c0 {d.fence()}"""
        lkey = f"c.okey * {LINE_SLOTS} + j.k"
        rolled = f"""
            SELECT c.order_id, c.okey, j.k AS line_no, c.fav, {self.line_roll(lkey)}
            FROM ({counted}) c {d.upto_small('c.lines', 'j', MAX_LINES)} {d.fence()}"""
        chosen = f"""
            SELECT l.order_id, {self.line_sku('l.fav')} AS sku, {self.line_quantity()} AS quantity
            FROM ({rolled}) l {d.fence()}"""
        price = d.choose([sku[3] for sku in self.SKUS], "x.sku", "bigint")
        return f"""
            INSERT INTO members_orderline (tenant_id, order_id, sku, name, category, quantity, unit_price, amount)
            SELECT {int(b.tenant_id)}, x.order_id, {d.choose([sku[0] for sku in self.SKUS], 'x.sku')},
                {d.choose([sku[1] for sku in self.SKUS], 'x.sku')}, {d.choose([sku[2] for sku in self.SKUS], 'x.sku')},
                x.quantity, {price} / 100.0, {price} * x.quantity / 100.0
            FROM ({chosen}) x
        """

    # ---------------------------------------------------------------- events

    def events_sql(self):
        d, b = self.d, self.b
        A = b.as_of
        ekey = f"p.n * {EVENT_SLOTS} + k.k"
        rolled = f"""
            SELECT p.member_id, {ekey} AS ekey, p.joined, p.ev_end,
                {self.pick(ekey, 70, 100)} AS r_type, {self.pick(ekey, 71, 1000000)} AS r_time
            FROM demo_plan p {d.upto('p.events', 'k')} {d.fence()}"""
        types = [name for name, share in catalog.EVENT_TYPES for _ in range(share)]
        typed = f"""
            SELECT e.*, {d.choose(types, 'e.r_type')} AS type FROM ({rolled}) e {d.fence()}"""
        properties = (
            "CASE e.type WHEN 'coupon_claimed' THEN '{\"coupon\": \"新人礼券 ¥66\"}' "
            "WHEN 'page_view' THEN '{\"page\": \"新品上市\"}' "
            "WHEN 'message_read' THEN '{\"channel\": \"wecom\"}' "
            "WHEN 'message_replied' THEN '{\"channel\": \"wecom\"}' "
            "WHEN 'group_joined' THEN '{\"group\": \"门店福利群\"}' "
            "WHEN 'group_left' THEN '{\"group\": \"门店福利群\"}' "
            "ELSE '{}' END"
        )
        occurred = d.least(f"e.joined + (e.ev_end - e.joined) * e.r_time / 1000000 + 60", f"{A - 1}")
        return self._insert_events(f"""
            SELECT e.member_id, e.ekey, e.type, {occurred} AS occurred, {properties} AS properties
            FROM ({typed}) e""")

    def contact_events_sql(self):
        """The member adding the guide when they joined, and deleting them for those who did."""
        added = f"""
            SELECT p.member_id, p.n * {EVENT_SLOTS} AS ekey, 'contact_added' AS type, p.joined AS occurred,
                '{{"channel": "' || p.channel || '"}}' AS properties
            FROM demo_plan p
            UNION ALL
            SELECT p.member_id, p.n * {EVENT_SLOTS} + {CONTACT_DELETED_SLOT}, 'contact_deleted', p.changed, '{{}}'
            FROM demo_plan p WHERE p.deleted = 1"""
        return self._insert_events(added)

    def _insert_events(self, source):
        d, b = self.d, self.b
        return f"""
            INSERT INTO members_event (tenant_id, member_id, type, occurred_at, properties, external_id, created_at)
            SELECT {int(b.tenant_id)}, v.member_id, v.type, {d.ts('v.occurred')}, {d.jsonb('v.properties')},
                '{EVENT_PREFIX}' || {d.pad('v.ekey', 12)}, {d.ts(b.now)}
            FROM ({source}) v
        """
