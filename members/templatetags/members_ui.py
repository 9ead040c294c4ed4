"""The members' panel of the dashboard home: member and order counts, the order binding rate."""
from datetime import timedelta

from django import template
from django.core.cache import cache

from ..models import ContactStatus
from ..queries import visible_members
from ..services import bind_rate

register = template.Library()

NEW_MEMBER_DAYS = 30
NEWEST_MEMBERS = 6
BIND_RATE_SECONDS = 600


@register.inclusion_tag("members/_dashboard_figures.html", takes_context=True)
def member_figures(context):
    """Members, the new ones of the last 30 days against the 30 before, lost contacts and the binding rate."""
    request = context["request"]
    staff, tenant = request.staff, request.tenant
    members = visible_members(staff)
    now = tenant.local_now()
    since = now - timedelta(days=NEW_MEMBER_DAYS)
    before = since - timedelta(days=NEW_MEMBER_DAYS)
    member_count = members.count()
    lost = members.exclude(contact_status=ContactStatus.ACTIVE)
    lost_contact_count = lost.count()
    new_member_count = members.filter(joined_at__gte=since).count()
    previous_new_count = members.filter(joined_at__gte=before, joined_at__lt=since).count()
    # Binding is a brand-wide KPI: shown to those who see the whole brand. It counts every order
    # (a second per ten million), so it is kept for a few minutes.
    binding = None
    if staff.sees_all_members:
        key = f"dashboard:bind-rate:{tenant.pk}:{tenant.created_at.timestamp()}"
        binding = cache.get(key)
        if binding is None:
            binding = bind_rate(tenant)
            cache.set(key, binding, BIND_RATE_SECONDS)
    return {
        "request": request,
        "member_count": member_count,
        "new_member_count": new_member_count,
        "new_member_change": new_member_count - previous_new_count,
        "new_since": since.date(),
        "new_member_days": NEW_MEMBER_DAYS,
        "lost_contact_count": lost_contact_count,
        "recently_lost_count": lost.filter(contact_status_changed_at__gte=since).count(),
        "active_contact_count": member_count - lost_contact_count,
        "binding": binding,
        "bind_pct": int(binding["rate"] * 100) if binding else 0,
    }


@register.inclusion_tag("members/_dashboard_newest.html", takes_context=True)
def newest_members(context, limit=NEWEST_MEMBERS):
    members = visible_members(context["request"].staff)
    return {"recent_members": members.select_related("home_store", "owner_guide").order_by("-joined_at", "-pk")[:limit]}
