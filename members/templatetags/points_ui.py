"""The points and tier panel of the member 360 page: ``{% load points_ui %}{% points_panel member %}``,
or include members/_points_panel.html, which loads it."""
from django import template

from ..api_points import member_points

register = template.Library()

RECENT_ENTRIES = 5


@register.inclusion_tag("members/points_panel_card.html", takes_context=True)
def points_panel(context, member):
    request = context["request"]
    data = member_points(request.tenant, member.pk, recent=RECENT_ENTRIES)
    return {**data, "member": member, "request": request}
