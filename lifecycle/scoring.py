"""Set-based scoring: SQL statements over sets of members, chunked by member id.

Nothing here reads the clock: every function takes ``as_of``. Time is counted in whole days
of 24 hours: "days since X" is floor((as_of - X) / 1 day), so "days since X >= N" is exactly
``X <= as_of - N days``, and "in the last 90 days" means ``as_of - 90 days < X <= as_of``
(days since < 90). Orders and events after ``as_of`` are not seen, which is what makes a
backfill over past dates exact.

One statement per chunk computes every metric from orders, order lines and events, decides the
rule that matched, and writes the member's row; it rewrites a row only when something in it
changed, so a re-run with the same ``as_of`` writes nothing. A second statement turns the rows
this run rewrote into StageChange rows when the stage or the warning moved.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction

from members.models import ContactStatus, Event, EventType, Member, Order, OrderLine

from .models import (
    DailyStageSnapshot, MemberLifecycle, PendingMember, Rule, Stage, StageChange, WarningRule,
)

DAY = timedelta(days=1)
CHURNED_RULES = (Rule.CHURNED_LAPSED, Rule.CHURNED_NEVER_BOUGHT, Rule.CHURNED_DELETED_CONTACT)

# Columns a scoring run writes; a row is rewritten only when one of these differs.
COMPARED = (
    "store_id", "guide_id", "joined_at", "first_order_at", "last_order_at", "orders_total", "orders_90",
    "orders_365", "spend_total", "spend_90", "spend_365", "aov_90", "aov_prev", "favourite_category",
    "preferred_store_id", "last_interaction_at", "contact_status", "contact_changed_at", "days_to_first_order", "stage", "rule",
    "churn_warning", "warning_rule",
)


@dataclass(frozen=True)
class Rules:
    dormant_after_days: int = 90
    churn_after_days: int = 180
    mature_min_orders: int = 3
    intro_churn_days: int = 180
    warning_days: int = 60
    aov_drop_pct: int = 50

    @classmethod
    def of(cls, values):
        return cls(**{k: int(v) for k, v in values.items() if k in cls.__dataclass_fields__})


def chunk_size():
    return getattr(settings, "LIFECYCLE_CHUNK_SIZE", 100_000)


# ---------------------------------------------------------------- dialect

def _postgres():
    return connection.vendor == "postgresql"


def _distinct():
    return "IS DISTINCT FROM" if _postgres() else "IS NOT"


def _json_object():
    return "jsonb_build_object" if _postgres() else "json_object"


def _whole_days(start, end):
    """SQL for floor((end - start) / 1 day) with both operands timestamps."""
    if _postgres():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start})) / 86400) AS INTEGER)"
    return f"((CAST(strftime('%%s', {end}) AS INTEGER) - CAST(strftime('%%s', {start}) AS INTEGER)) / 86400)"


def _ts(value):
    return connection.ops.adapt_datetimefield_value(value)


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


LC = _table(MemberLifecycle)


def _tables():
    return {
        "lc": _table(MemberLifecycle), "member": _table(Member), "order": _table(Order), "line": _table(OrderLine),
        "event": _table(Event), "change": _table(StageChange), "pending": _table(PendingMember),
        "snapshot": _table(DailyStageSnapshot),
    }


def rule_params(rules, as_of):
    """The cut-off moments of the stage table as of ``as_of``."""
    return {
        "t": _ts(as_of),
        "t90": _ts(as_of - 90 * DAY),
        "t365": _ts(as_of - 365 * DAY),
        "c_churn": _ts(as_of - rules.churn_after_days * DAY),
        "c_dorm": _ts(as_of - rules.dormant_after_days * DAY),
        "c_warn": _ts(as_of - rules.warning_days * DAY),
        "c_intro": _ts(as_of - rules.intro_churn_days * DAY),
        "mature": rules.mature_min_orders,
        "keep_pct": 100 - rules.aov_drop_pct,
    }


def rule_case(r):
    """The stage table, first matching row wins, over a row source aliased ``r``."""
    return f"""CASE
        WHEN {r}.last_order_at IS NOT NULL AND {r}.last_order_at <= %(c_churn)s THEN '{Rule.CHURNED_LAPSED}'
        WHEN {r}.last_order_at IS NULL AND {r}.joined_at <= %(c_intro)s THEN '{Rule.CHURNED_NEVER_BOUGHT}'
        WHEN {r}.contact_status = '{ContactStatus.DELETED_BY_CUSTOMER}' AND ({r}.last_order_at IS NULL
             OR {r}.contact_changed_at IS NULL OR {r}.last_order_at <= {r}.contact_changed_at)
             THEN '{Rule.CHURNED_DELETED_CONTACT}'
        WHEN {r}.last_order_at IS NOT NULL AND {r}.last_order_at <= %(c_dorm)s THEN '{Rule.DORMANT}'
        WHEN {r}.orders_365 >= %(mature)s THEN '{Rule.MATURITY}'
        WHEN {r}.last_order_at IS NOT NULL THEN '{Rule.GROWTH}'
        ELSE '{Rule.INTRODUCTION}' END"""


def stage_case(rule_sql):
    churned = ", ".join(f"'{rule}'" for rule in CHURNED_RULES)
    return f"CASE WHEN {rule_sql} IN ({churned}) THEN '{Stage.CHURNED}' ELSE {rule_sql} END"


def warning_case(r, rule_sql):
    """The churn warning of growth and maturity members. The order-value test is done in whole
    cents and cross-multiplied (aov_90 <= aov_prev x keep%  <=>  spend_90 x 100 x orders_prev <=
    spend_prev x keep x orders_90), so that it is exact on every database; with no order in 90 days
    the 90-day average is 0."""
    spend_prev = f"ROUND(({r}.spend_365 - {r}.spend_90) * 100)"
    return f"""CASE
        WHEN {rule_sql} NOT IN ('{Rule.MATURITY}', '{Rule.GROWTH}') THEN '{WarningRule.NONE}'
        WHEN {r}.last_order_at <= %(c_warn)s THEN '{WarningRule.NO_RECENT_ORDER}'
        WHEN {r}.orders_90 <= 1 AND {spend_prev} > 0
             AND ROUND({r}.spend_90 * 100) * 100 * ({r}.orders_365 - {r}.orders_90)
                 <= {spend_prev} * %(keep_pct)s * {r}.orders_90
             THEN '{WarningRule.AOV_DROP}'
        ELSE '{WarningRule.NONE}' END"""


# ---------------------------------------------------------------- member sets

def _range(column):
    return f"{column} >= %(lo)s AND {column} < %(hi)s"


def _pending(column):
    t = _tables()
    return (
        f"{column} IN (SELECT p.member_id FROM {t['pending']} p WHERE p.tenant_id = %(tenant)s "
        f"AND p.run_id = %(run)s AND p.member_id >= %(lo)s AND p.member_id < %(hi)s)"
    )


COUNTED = "o.status <> 'refunded' AND (o.refunded_amount = 0 OR o.refunded_amount < o.total)"
IN_YEAR = "o.placed_at > %(t365)s AND o.placed_at <= %(t)s"
NET = "(o.total - o.refunded_amount)"


def _orders_sql(member_filter, grouped=True):
    """The order metrics of the members ``member_filter`` selects, one row per member who ordered;
    not ``grouped``: one row for the one member it selects (counts 0 and no dates if none)."""
    t = _tables()
    return f"""
        SELECT {"o.member_id AS member_id, " if grouped else ""}MIN(o.placed_at) AS first_order_at, MAX(o.placed_at) AS last_order_at,
            COUNT(*) AS orders_total, SUM({NET}) AS spend_total,
            SUM(CASE WHEN o.placed_at > %(t90)s THEN 1 ELSE 0 END) AS orders_90,
            SUM(CASE WHEN o.placed_at > %(t90)s THEN {NET} ELSE 0 END) AS spend_90,
            SUM(CASE WHEN o.placed_at > %(t365)s THEN 1 ELSE 0 END) AS orders_365,
            SUM(CASE WHEN o.placed_at > %(t365)s THEN {NET} ELSE 0 END) AS spend_365
        FROM {t['order']} o
        WHERE o.tenant_id = %(tenant)s AND o.placed_at <= %(t)s AND {COUNTED} AND {member_filter('o.member_id')}
        {"GROUP BY o.member_id" if grouped else ""}"""


ORDER_COLUMNS = {
    "first_order_at": "o.first_order_at", "last_order_at": "o.last_order_at",
    "orders_total": "COALESCE(o.orders_total, 0)", "orders_90": "COALESCE(o.orders_90, 0)",
    "orders_365": "COALESCE(o.orders_365, 0)", "spend_total": "COALESCE(o.spend_total, 0)",
    "spend_90": "COALESCE(o.spend_90, 0)", "spend_365": "COALESCE(o.spend_365, 0)",
}


def _member_columns(favourite, store, interaction, orders=None):
    orders = {**ORDER_COLUMNS, **(orders or {})}
    order_columns = ", ".join(f"{expr} AS {name}" for name, expr in orders.items())
    return f"""m.id AS member_id, m.tenant_id AS tenant_id, m.home_store_id AS store_id, m.owner_guide_id AS guide_id,
        m.joined_at AS joined_at, {order_columns},
        {favourite} AS favourite_category, {store} AS preferred_store_id, {interaction} AS last_interaction_at,
        CASE WHEN m.contact_status_changed_at > %(t)s THEN '{ContactStatus.ACTIVE}' ELSE m.contact_status END
            AS contact_status,
        CASE WHEN m.contact_status_changed_at > %(t)s THEN NULL ELSE m.contact_status_changed_at END
            AS contact_changed_at"""


def _metrics_sql(member_filter, profile_filter=None):
    """One row per member of the set who had joined by as_of, with every metric, from whole-table
    passes over orders, lines and events (for runs over the whole membership).

    With ``profile_filter``, the favourite category, the preferred store and the last interaction
    (the metrics that read every order line and event of the year) are computed only for the
    members it selects, the members queued for the run; the others keep their stored values,
    which nothing since the last run changed."""
    t = _tables()
    profile = profile_filter or member_filter
    favourite, store, interaction = "COALESCE(fc.category, '')", "ps.store_id", "ev.last_interaction_at"
    reuse = ""
    if profile_filter:
        favourite = f"CASE WHEN pp.member_id IS NULL THEN COALESCE(old.favourite_category, '') ELSE {favourite} END"
        store = f"CASE WHEN pp.member_id IS NULL THEN old.preferred_store_id ELSE {store} END"
        interaction = f"CASE WHEN pp.member_id IS NULL THEN old.last_interaction_at ELSE {interaction} END"
        reuse = f"""
    LEFT JOIN {t['lc']} old ON old.member_id = m.id
    LEFT JOIN {t['pending']} pp ON pp.tenant_id = %(tenant)s AND pp.run_id = %(run)s AND pp.member_id = m.id
        AND pp.refresh_profile"""
    return f"""
    SELECT {_member_columns(favourite, store, interaction)}
    FROM {t['member']} m
    LEFT JOIN ({_orders_sql(member_filter)}) o ON o.member_id = m.id
    LEFT JOIN (
        SELECT e.member_id AS member_id, MAX(e.occurred_at) AS last_interaction_at
        FROM {t['event']} e
        WHERE e.tenant_id = %(tenant)s AND e.occurred_at <= %(t)s AND {profile('e.member_id')}
        GROUP BY e.member_id
    ) ev ON ev.member_id = m.id
    LEFT JOIN (
        SELECT ranked.member_id AS member_id, ranked.category AS category FROM (
            SELECT o.member_id AS member_id, l.category AS category,
                ROW_NUMBER() OVER (PARTITION BY o.member_id ORDER BY SUM(l.amount) DESC, l.category) AS rn
            FROM {t['line']} l JOIN {t['order']} o ON o.id = l.order_id
            WHERE o.tenant_id = %(tenant)s AND {IN_YEAR} AND {COUNTED} AND l.category <> '' AND {profile('o.member_id')}
            GROUP BY o.member_id, l.category
        ) ranked WHERE ranked.rn = 1
    ) fc ON fc.member_id = m.id
    LEFT JOIN (
        SELECT ranked.member_id AS member_id, ranked.store_id AS store_id FROM (
            SELECT o.member_id AS member_id, o.store_id AS store_id,
                ROW_NUMBER() OVER (
                    PARTITION BY o.member_id ORDER BY COUNT(*) DESC, MAX(o.placed_at) DESC, o.store_id
                ) AS rn
            FROM {t['order']} o
            WHERE o.tenant_id = %(tenant)s AND {IN_YEAR} AND {COUNTED} AND o.store_id IS NOT NULL
                AND {profile('o.member_id')}
            GROUP BY o.member_id, o.store_id
        ) ranked WHERE ranked.rn = 1
    ) ps ON ps.member_id = m.id{reuse}
    WHERE m.tenant_id = %(tenant)s AND m.joined_at <= %(t)s AND {member_filter('m.id')}
    """


def _queued_metrics_sql():
    """The same row as ``_metrics_sql`` for the members queued for the run (within the chunk).

    The profile metrics are correlated subqueries, evaluated only for the queued members whose
    lines or events changed: each is a few index reads of one member's orders, lines or events,
    so the plan cannot turn into a pass over every order line however the row counts are guessed."""
    t = _tables()
    favourite = f"""COALESCE((SELECT l.category FROM {t['order']} o JOIN {t['line']} l ON l.order_id = o.id
            WHERE o.tenant_id = %(tenant)s AND o.member_id = m.id AND {IN_YEAR} AND {COUNTED} AND l.category <> ''
            GROUP BY l.category ORDER BY SUM(l.amount) DESC, l.category LIMIT 1), '')"""
    # SQLite would otherwise group through the store index and read every order of the brand
    # that has a store, once per member, instead of the member's own orders.
    by_member = "" if _postgres() else " INDEXED BY order_tenant_member_placed"
    store = f"""(SELECT o.store_id FROM {t['order']} o{by_member}
            WHERE o.tenant_id = %(tenant)s AND o.member_id = m.id AND {IN_YEAR} AND {COUNTED} AND o.store_id IS NOT NULL
            GROUP BY o.store_id ORDER BY COUNT(*) DESC, MAX(o.placed_at) DESC, o.store_id LIMIT 1)"""
    interaction = f"""(SELECT MAX(e.occurred_at) FROM {t['event']} e
            WHERE e.tenant_id = %(tenant)s AND e.member_id = m.id AND e.occurred_at <= %(t)s)"""
    # Members queued only because time moved them have no order placed, changed, entering or
    # leaving the year since their row was written: their totals and 365-day figures stand, and
    # only the 90-day figures are recounted, from the orders of the last 90 days.
    orders = {
        name: f"CASE WHEN p.refresh_profile THEN {expr} ELSE old.{name} END" for name, expr in ORDER_COLUMNS.items()
    }
    orders["orders_90"] = "CASE WHEN p.refresh_profile THEN COALESCE(o.orders_90, 0) ELSE COALESCE(o90.orders_90, 0) END"
    orders["spend_90"] = "CASE WHEN p.refresh_profile THEN COALESCE(o.spend_90, 0) ELSE COALESCE(o90.spend_90, 0) END"
    columns = _member_columns(
        f"CASE WHEN p.refresh_profile THEN {favourite} ELSE COALESCE(old.favourite_category, '') END",
        f"CASE WHEN p.refresh_profile THEN {store} ELSE old.preferred_store_id END",
        f"CASE WHEN p.refresh_profile THEN {interaction} ELSE old.last_interaction_at END",
        orders,
    )
    if _postgres():
        # Per queued member, that member's orders only: parallel workers then share the members
        # out, instead of each aggregating the orders of every queued member again for a hash.
        order_joins = f"""
    LEFT JOIN LATERAL ({_orders_sql(lambda column: f"{column} = m.id AND p.refresh_profile", grouped=False)}) o ON TRUE
    LEFT JOIN LATERAL (
        SELECT COUNT(*) AS orders_90, SUM({NET}) AS spend_90 FROM {t['order']} o
        WHERE NOT p.refresh_profile AND o.tenant_id = %(tenant)s AND o.member_id = m.id
            AND o.placed_at > %(t90)s AND o.placed_at <= %(t)s AND {COUNTED}
    ) o90 ON TRUE"""
    else:
        order_joins = f"""
    LEFT JOIN ({_orders_sql(_pending_profile)}) o ON o.member_id = m.id
    LEFT JOIN (
        SELECT o.member_id AS member_id, COUNT(*) AS orders_90, SUM({NET}) AS spend_90
        FROM {t['pending']} q JOIN {t['order']} o ON o.tenant_id = %(tenant)s AND o.member_id = q.member_id
            AND o.placed_at > %(t90)s AND o.placed_at <= %(t)s
        WHERE q.tenant_id = %(tenant)s AND q.run_id = %(run)s AND NOT q.refresh_profile
            AND q.member_id >= %(lo)s AND q.member_id < %(hi)s AND {COUNTED}
        GROUP BY o.member_id
    ) o90 ON o90.member_id = m.id"""
    return f"""
    SELECT {columns}, old.member_id IS NULL AS is_new
    FROM {t['pending']} p
    JOIN {t['member']} m ON m.id = p.member_id{order_joins}
    LEFT JOIN {t['lc']} old ON old.member_id = m.id
    WHERE p.tenant_id = %(tenant)s AND p.run_id = %(run)s AND p.member_id >= %(lo)s AND p.member_id < %(hi)s
        AND m.tenant_id = %(tenant)s AND m.joined_at <= %(t)s
    """


def _scored_sql(metrics, extra=()):
    """Every column of a member's row as of the moment, per member of ``metrics`` (a metrics query),
    followed by the ``extra`` columns of ``metrics``."""
    rule = "r.rule"
    days_to_first = _whole_days("f.joined_at", "f.first_order_at")
    scored = f"""
        SELECT r.*, {stage_case(rule)} AS stage, {warning_case("r", rule)} AS warning_rule
        FROM (SELECT s.*, {rule_case("s")} AS rule FROM ({metrics}) s) r"""
    return f"""
    SELECT f.member_id AS member_id, f.tenant_id AS tenant_id, f.store_id AS store_id, f.guide_id AS guide_id,
        f.joined_at AS joined_at, f.first_order_at AS first_order_at, f.last_order_at AS last_order_at,
        f.orders_total AS orders_total, f.orders_90 AS orders_90, f.orders_365 AS orders_365,
        f.spend_total AS spend_total, f.spend_90 AS spend_90, f.spend_365 AS spend_365,
        CASE WHEN f.orders_90 > 0 THEN ROUND(f.spend_90 * 1.0 / f.orders_90, 2) ELSE 0 END AS aov_90,
        CASE WHEN f.orders_365 > f.orders_90
             THEN ROUND((f.spend_365 - f.spend_90) * 1.0 / (f.orders_365 - f.orders_90), 2) ELSE 0 END AS aov_prev,
        f.favourite_category AS favourite_category, f.preferred_store_id AS preferred_store_id,
        f.last_interaction_at AS last_interaction_at, f.contact_status AS contact_status, f.contact_changed_at AS contact_changed_at,
        CASE WHEN f.first_order_at IS NULL THEN NULL WHEN f.first_order_at <= f.joined_at THEN 0
             ELSE {days_to_first} END AS days_to_first_order,
        f.stage AS stage, f.rule AS rule, f.warning_rule <> '' AS churn_warning, f.warning_rule AS warning_rule
        {"".join(f", f.{name} AS {name}" for name in extra)}
    FROM ({scored}) f"""


INSERTED = (
    "member_id, tenant_id, store_id, guide_id, joined_at, first_order_at, last_order_at, orders_total, "
    "orders_90, orders_365, spend_total, spend_90, spend_365, aov_90, aov_prev, favourite_category, "
    "preferred_store_id, last_interaction_at, contact_status, contact_changed_at, days_to_first_order, stage, rule, "
    "churn_warning, warning_rule"
)


def _new_row_values(f):
    """The columns a member's first row gets beyond the scored ones."""
    return (
        f"%(t)s, CASE WHEN {f}.churn_warning THEN %(t)s ELSE NULL END, "
        f"CASE WHEN {f}.stage = '{Stage.MATURITY}' THEN %(t)s ELSE NULL END, '', FALSE, %(run)s, %(t)s"
    )


NEW_COLUMNS = "stage_since, warning_since, matured_at, prev_stage, prev_warning, run_id, as_of"


def _carried(new, old=LC):
    """SET items of the update: history-aware columns of a changed row."""
    return f"""stage_since = CASE WHEN {old}.stage = {new}.stage THEN {old}.stage_since ELSE %(t)s END,
        warning_since = CASE WHEN NOT {new}.churn_warning THEN NULL
                             WHEN {old}.churn_warning THEN {old}.warning_since ELSE %(t)s END,
        matured_at = COALESCE({old}.matured_at, CASE WHEN {new}.stage = '{Stage.MATURITY}' THEN %(t)s ELSE NULL END),
        prev_stage = {old}.stage,
        prev_warning = {old}.churn_warning,
        run_id = %(run)s,
        as_of = %(t)s"""


def _update_sql(source):
    """Rewrite the stored rows that differ from the rows of ``source`` (all columns of
    ``_scored_sql``): a re-run with the same as_of writes nothing."""
    updates = ",\n        ".join(f"{c} = f.{c}" for c in COMPARED)
    changed = " OR ".join(f"{LC}.{c} {_distinct()} f.{c}" for c in COMPARED)
    return f"""
    UPDATE {LC} SET
        {updates},
        {_carried("f")}
    FROM ({source}) f
    WHERE {LC}.member_id = f.member_id AND {LC}.tenant_id = %(tenant)s AND ({changed})
    """


def _insert_missing_sql(source, flagged=False):
    """Insert the rows of ``source`` that have no stored row yet. ``flagged``: ``source`` says so
    in its ``is_new`` column (known when it was computed); a row another run inserted since is
    left to that run."""
    if flagged:
        columns = ", ".join(f"f.{name.strip()}" for name in INSERTED.split(","))
        return f"""
    INSERT INTO {LC} ({INSERTED}, {NEW_COLUMNS})
    SELECT {columns}, {_new_row_values("f")} FROM ({source}) f
    WHERE f.is_new
    ON CONFLICT (member_id) DO NOTHING
    """
    return f"""
    INSERT INTO {LC} ({INSERTED}, {NEW_COLUMNS})
    SELECT f.*, {_new_row_values("f")} FROM ({source}) f
    WHERE NOT EXISTS (SELECT 1 FROM {LC} cur WHERE cur.member_id = f.member_id)
    """


def _changes_sql(member_filter, scored=None, written=None):
    """StageChange rows for the members this run rewrote whose stage or warning moved. With
    ``scored`` (the table of the rows the run computed), the rows are found through it, one
    primary-key read each, instead of by a pass over every member's row. With ``written`` (an
    INSERT or UPDATE of member rows, PostgreSQL only), the rows are the ones it returns, so the
    statement that writes them also records their changes without reading them back."""
    t = _tables()
    metrics = ", ".join(
        f"'{name}', {expr}" for name, expr in (
            ("orders_total", "lc.orders_total"), ("orders_90", "lc.orders_90"), ("orders_365", "lc.orders_365"),
            ("spend_90", "lc.spend_90"), ("spend_365", "lc.spend_365"), ("aov_90", "lc.aov_90"),
            ("aov_prev", "lc.aov_prev"), ("last_order_at", "lc.last_order_at"), ("joined_at", "lc.joined_at"),
            ("days_since_last_order", _whole_days("lc.last_order_at", "lc.as_of")),
            ("days_since_joining", _whole_days("lc.joined_at", "lc.as_of")),
            ("contact_status", "lc.contact_status"),
        )
    )
    if written:
        rows = "written lc"
    elif scored:
        rows = f"{scored} s JOIN {LC} lc ON lc.member_id = s.member_id"
    else:
        rows = f"{LC} lc"
    return f"""
    {f"WITH written AS ({written} RETURNING {LC}.*)" if written else ""}
    INSERT INTO {t['change']} (tenant_id, member_id, run_id, store_id, guide_id, from_stage, to_stage, from_warning,
        to_warning, at, rule, warning_rule, metrics)
    SELECT lc.tenant_id, lc.member_id, lc.run_id, lc.store_id, lc.guide_id, lc.prev_stage, lc.stage, lc.prev_warning,
        lc.churn_warning, lc.as_of, lc.rule, lc.warning_rule, {_json_object()}({metrics})
    FROM {rows}
    WHERE lc.tenant_id = %(tenant)s AND lc.run_id = %(run)s AND {member_filter('lc.member_id')}
        AND (lc.prev_stage <> lc.stage OR lc.prev_warning <> lc.churn_warning)
    """


def _session_settings(cursor, per_member=True):
    if _postgres():
        # Compiling these statements costs seconds and saves nothing; the aggregates want memory.
        cursor.execute("SET LOCAL jit = off")
        if per_member:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # A member's orders are a few index reads, not a reason to scan.
            cursor.execute("SET LOCAL random_page_cost = 1.1")
        else:
            # Over the whole membership the (member, category) sums of a year of order lines are
            # millions of groups: in memory they are not written out and read back in batches.
            # The per-member aggregates read covering indexes, but millions of heap reads in
            # placed_at order cost more than a parallel scan of the orders.
            cursor.execute("SET LOCAL work_mem = '512MB'")
            cursor.execute("SET LOCAL random_page_cost = 2")


def _score_chunks(tenant_id, run_id, as_of, rules, statements, member_filter, bounds):
    params = {"tenant": tenant_id, "run": run_id, **rule_params(rules, as_of)}
    statements = list(statements) + [_changes_sql(member_filter)]
    for lo, hi in bounds:
        with transaction.atomic(), connection.cursor() as cursor:
            _session_settings(cursor)
            chunk = {**params, "lo": lo, "hi": hi}
            for statement in statements:
                cursor.execute(statement, chunk)


def _everyone(column):
    return "1 = 1"


def _pending_profile(column):
    """Queued members whose lines or events changed (within the chunk's id range, if any)."""
    t = _tables()
    return (
        f"{column} IN (SELECT p.member_id FROM {t['pending']} p WHERE p.tenant_id = %(tenant)s "
        f"AND p.run_id = %(run)s AND p.refresh_profile AND p.member_id >= %(lo)s AND p.member_id < %(hi)s)"
    )


def _scored_table(run_id):
    return connection.ops.quote_name(f"lifecycle_scored_{run_id}")


def _materialise(cursor, run_id, source, params):
    """Compute the rows of ``source`` into a temporary table indexed by member. On PostgreSQL
    the query that fills it may run in parallel, which a query writing the members' rows may not."""
    scored = _scored_table(run_id)
    cursor.execute(f"CREATE TEMPORARY TABLE {scored} AS {source}", params)
    cursor.execute(f"CREATE INDEX ON {scored} (member_id)" if _postgres() else
                   f"CREATE INDEX {connection.ops.quote_name(f'lifecycle_scored_{run_id}_member')} ON {scored} (member_id)")
    if _postgres():
        # The statements that read it join on the member id, the only statistics they need.
        cursor.execute(f"ANALYZE {scored} (member_id)")
    return scored


def score_all(tenant_id, run_id, as_of, rules, reuse_profile=False):
    """Score every member of the tenant who had joined by ``as_of``.

    The metrics of the whole membership are computed by one statement into a temporary table
    (whole-table passes over orders, lines and events, which the database may run in parallel),
    then written to the members' rows one id range at a time. ``reuse_profile``: the members whose
    favourite category or last interaction can have changed are queued for the run (see
    ``queue_changed_members``); the others keep theirs."""
    scored = _scored_table(run_id)
    params = {"tenant": tenant_id, "run": run_id, **rule_params(rules, as_of)}
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {scored}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _session_settings(cursor, per_member=False)
            source = _scored_sql(_metrics_sql(_everyone, _pending_profile if reuse_profile else None))
            _materialise(cursor, run_id, source, {**params, "lo": 0, "hi": 2**62})
            cursor.execute(f"SELECT MIN(member_id), MAX(member_id) FROM {scored}")
            low, high = cursor.fetchone()
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {LC} WHERE tenant_id = %s)", [tenant_id])
            scored_before = cursor.fetchone()[0]
        if low is None:
            return
        size = chunk_size()
        bounds = [(lo, min(lo + size, high + 1)) for lo in range(low, high + 1, size)]
        source = f"SELECT * FROM {scored} WHERE member_id >= %(lo)s AND member_id < %(hi)s"
        # A brand's first run has no rows to compare with: every row is inserted.
        statements = ([_update_sql(source)] if scored_before else []) + [_insert_missing_sql(source)]
        _score_chunks(tenant_id, run_id, as_of, rules, statements, _range, bounds)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {scored}")


def score_pending(tenant_id, run_id, as_of, rules):
    """Score the members queued for this run, in chunks of about ``chunk_size()`` members.
    Returns how many were scored (the queued members who had joined by ``as_of``)."""
    t = _tables()
    size = chunk_size()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT member_id FROM (
                    SELECT member_id, ROW_NUMBER() OVER (ORDER BY member_id) AS rn
                    FROM {t['pending']} WHERE tenant_id = %s AND run_id = %s
                ) numbered WHERE (rn - 1) %% %s = 0 ORDER BY member_id""",
            [tenant_id, run_id, size],
        )
        starts = [row[0] for row in cursor.fetchall()]
    if not starts:
        return 0
    bounds = list(zip(starts, starts[1:] + [None]))
    last = bounds[-1][0]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(member_id) FROM {t['pending']} WHERE tenant_id = %s AND run_id = %s", [tenant_id, run_id])
        bounds[-1] = (last, cursor.fetchone()[0] + 1)
    # Each chunk's rows are computed first and then compared with the stored ones: only rows that
    # differ are rewritten, and the stage changes are read back through the computed rows.
    params = {"tenant": tenant_id, "run": run_id, **rule_params(rules, as_of)}
    source = _scored_sql(_queued_metrics_sql(), extra=("is_new",))
    scored = _scored_table(run_id)
    computed = f"SELECT * FROM {scored}"
    if _postgres():
        statements = [
            _changes_sql(_everyone, written=_insert_missing_sql(computed, flagged=True)),
            _changes_sql(_everyone, written=_update_sql(computed)),
        ]
    else:
        statements = [_insert_missing_sql(computed, flagged=True), _update_sql(computed), _changes_sql(_everyone, scored)]
    members = 0
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {scored}")
    try:
        for lo, hi in bounds:
            with transaction.atomic(), connection.cursor() as cursor:
                _session_settings(cursor)
                chunk = {**params, "lo": lo, "hi": hi}
                _materialise(cursor, run_id, source, chunk)
                for statement in statements:
                    cursor.execute(statement, chunk)
                cursor.execute(f"SELECT COUNT(*) FROM {scored}")
                members += cursor.fetchone()[0]
                cursor.execute(f"DROP TABLE {scored}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {scored}")
    return members


# ---------------------------------------------------------------- what a run re-scores

def queue_members(tenant_id, run_id, member_ids):
    PendingMember.objects.unscoped().bulk_create(
        [PendingMember(tenant_id=tenant_id, run_id=run_id, member_id=pk) for pk in sorted(set(member_ids))],
        batch_size=2000, ignore_conflicts=True,
    )
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_tables()['pending']}")


def queue_changed_members(tenant_id, run_id, as_of, rules, previous):
    """Queue the members whose metrics or stage can differ between the previous run and now.

    Besides new or changed data (orders, refunds and events recorded since the previous run
    started, members created since), time alone moves a member only when an order enters or
    leaves the 90- or 365-day window, the last order crosses the warning, dormant or churn
    threshold, the join crosses intro_churn_days, or the contact status changed in between.
    Each set is an indexed range query; together they are what a full run would change."""
    t = _tables()
    p, n = previous.as_of, as_of
    params = {
        "tenant": tenant_id, "run": run_id, "p": _ts(p), "n": _ts(n), "since": _ts(previous.started_at),
        "max_member": previous.max_member_id,
        "p90": _ts(p - 90 * DAY), "n90": _ts(n - 90 * DAY), "p365": _ts(p - 365 * DAY), "n365": _ts(n - 365 * DAY),
        "p_intro": _ts(p - rules.intro_churn_days * DAY), "n_intro": _ts(n - rules.intro_churn_days * DAY),
    }
    thresholds = sorted({rules.warning_days, rules.dormant_after_days, rules.churn_after_days})
    for i, days in enumerate(thresholds):
        params[f"pl{i}"], params[f"nl{i}"] = _ts(p - days * DAY), _ts(n - days * DAY)
    event_types = ", ".join(f"'{value}'" for value in EventType.values)
    orders = f"SELECT member_id FROM {t['order']} WHERE tenant_id = %(tenant)s AND member_id IS NOT NULL AND "
    members = f"SELECT id AS member_id FROM {t['member']} WHERE tenant_id = %(tenant)s AND "
    # Sources that can change order lines or events in the 365-day window: the favourite category
    # and the last interaction are re-read for these members.
    profile_sources = [
        orders + "placed_at > %(p)s AND placed_at <= %(n)s",
        orders + "placed_at > %(p365)s AND placed_at <= %(n365)s",
        orders + "updated_at >= %(since)s",
        f"SELECT member_id FROM {t['event']} WHERE tenant_id = %(tenant)s AND type IN ({event_types}) "
        "AND occurred_at > %(p)s AND occurred_at <= %(n)s",
        f"SELECT member_id FROM {t['event']} WHERE tenant_id = %(tenant)s AND created_at >= %(since)s",
        members + "joined_at > %(p)s AND joined_at <= %(n)s",
        members + "id > %(max_member)s",
    ]
    # Sources where only time moved the member: stage metrics are recomputed, the profile is kept.
    stage_sources = [
        orders + "placed_at > %(p90)s AND placed_at <= %(n90)s",
        members + "contact_status_changed_at > %(p)s AND contact_status_changed_at <= %(n)s",
        members + "joined_at > %(p_intro)s AND joined_at <= %(n_intro)s",
    ] + [
        f"SELECT member_id FROM {t['lc']} WHERE tenant_id = %(tenant)s "
        f"AND last_order_at > %(pl{i})s AND last_order_at <= %(nl{i})s"
        for i in range(len(thresholds))
    ]
    insert = (
        f"INSERT INTO {t['pending']} (tenant_id, run_id, member_id, refresh_profile) "
        "SELECT DISTINCT %(tenant)s, %(run)s, x.member_id, {flag} FROM ({source}) x WHERE 1 = 1 "
    )
    with connection.cursor() as cursor:
        for source in profile_sources:
            cursor.execute(insert.format(flag="TRUE", source=source) + "ON CONFLICT DO NOTHING", params)
        for source in stage_sources:
            cursor.execute(insert.format(flag="FALSE", source=source) + "ON CONFLICT DO NOTHING", params)
        # A time-moved member keeps the stored totals; one without a stored row (say, whose join
        # date was moved back by an import) is read in full.
        cursor.execute(
            f"UPDATE {t['pending']} SET refresh_profile = TRUE WHERE tenant_id = %(tenant)s AND run_id = %(run)s "
            f"AND NOT refresh_profile AND NOT EXISTS (SELECT 1 FROM {t['lc']} lc WHERE lc.member_id = {t['pending']}.member_id)",
            params,
        )
        if _postgres():
            cursor.execute(f"ANALYZE {t['pending']}")


def clear_pending(tenant_id, run_id):
    PendingMember.objects.unscoped().filter(tenant_id=tenant_id, run_id=run_id).delete()


def count_scored(tenant_id, run_id, as_of, everyone):
    """Members a run scored: everyone who had joined, or the queued ones who had."""
    t = _tables()
    if everyone:
        sql = f"SELECT COUNT(*) FROM {t['member']} WHERE tenant_id = %(tenant)s AND joined_at <= %(t)s"
    else:
        sql = (
            f"SELECT COUNT(*) FROM {t['pending']} p JOIN {t['member']} m ON m.id = p.member_id "
            "WHERE p.tenant_id = %(tenant)s AND p.run_id = %(run)s AND m.joined_at <= %(t)s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant_id, "run": run_id, "t": _ts(as_of)})
        return cursor.fetchone()[0]


def max_member_id(tenant_id):
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {t['member']} WHERE tenant_id = %s", [tenant_id])
        return cursor.fetchone()[0] or 0


def write_snapshot(tenant_id, day):
    """Members per store, guide, stage and warning on ``day``; replaces that day's rows."""
    t = _tables()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {t['snapshot']} WHERE tenant_id = %s AND day = %s", [tenant_id, day])
        # Counted by a plain query, which PostgreSQL can run in parallel (an INSERT ... SELECT
        # cannot); the groups are a few per store and guide, so they are inserted from here.
        cursor.execute(
            f"""SELECT store_id, guide_id, stage, churn_warning, COUNT(*) FROM {t['lc']} WHERE tenant_id = %s
                GROUP BY store_id, guide_id, stage, churn_warning""",
            [tenant_id],
        )
        groups = cursor.fetchall()
        DailyStageSnapshot.objects.unscoped().bulk_create(
            [
                DailyStageSnapshot(
                    tenant_id=tenant_id, day=day, store_id=store, guide_id=guide, stage=stage,
                    churn_warning=bool(warning), count=n,
                )
                for store, guide, stage, warning, n in groups
            ],
            batch_size=2000,
        )


# ---------------------------------------------------------------- dry run

def dry_run_counts(tenant_id, rules, as_of):
    """Members per (current stage, stage under ``rules``) and the warnings the rules would raise,
    computed from the stored metrics as of ``as_of`` (the last run)."""
    t = _tables()
    rule = rule_case("lc")
    sql = f"""
        SELECT x.stage, x.new_stage, x.churn_warning, x.new_warning, COUNT(*) FROM (
            SELECT lc.stage AS stage, {stage_case(rule)} AS new_stage, lc.churn_warning AS churn_warning,
                CASE WHEN {warning_case("lc", rule)} <> '' THEN 1 ELSE 0 END AS new_warning
            FROM {t['lc']} lc WHERE lc.tenant_id = %(tenant)s
        ) x GROUP BY x.stage, x.new_stage, x.churn_warning, x.new_warning
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant_id, **rule_params(rules, as_of)})
        return [(stage, new_stage, bool(warning), bool(new_warning), n) for stage, new_stage, warning, new_warning, n in cursor.fetchall()]
