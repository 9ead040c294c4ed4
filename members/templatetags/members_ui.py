"""The members' panel of the dashboard home: member and order counts, the order binding rate."""
from datetime import timedelta

from django import template

from ..models import ContactStatus
from ..queries import visible_members
from ..services import bind_rate

register = template.Library()

NEW_MEMBER_DAYS = 30


@register.inclusion_tag("members/_dashboard_figures.html", takes_context=True)
def member_figures(context):
    request = context["request"]
    staff, tenant = request.staff, request.tenant
    members = visible_members(staff)
    since = tenant.local_now() - timedelta(days=NEW_MEMBER_DAYS)
    member_count = members.count()
    lost_contact_count = members.exclude(contact_status=ContactStatus.ACTIVE).count()
    # Binding is a brand-wide KPI: shown to those who see the whole brand.
    binding = bind_rate(tenant) if staff.sees_all_members else None
    return {
        "request": request,
        "member_count": member_count,
        "new_member_count": members.filter(joined_at__gte=since).count(),
        "new_member_days": NEW_MEMBER_DAYS,
        "lost_contact_count": lost_contact_count,
        "active_contact_count": member_count - lost_contact_count,
        "binding": binding,
        "bind_pct": int(binding["rate"] * 100) if binding else 0,
        "recent_members": members.select_related("home_store", "owner_guide").order_by("-joined_at", "-pk")[:8],
    }
