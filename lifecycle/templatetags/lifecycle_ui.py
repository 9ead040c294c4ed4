from django import template

from .. import queries
from ..models import Stage

register = template.Library()

STAGE_STYLE = {
    Stage.INTRODUCTION: ("#eef0ff", "#4338ca", "person-plus"),
    Stage.GROWTH: ("#e7f7ee", "#16794a", "graph-up-arrow"),
    Stage.MATURITY: ("#e6f4fb", "#0b6a96", "gem"),
    Stage.DORMANT: ("#fff4e0", "#9a5b00", "moon"),
    Stage.CHURNED: ("#fdecec", "#b42318", "person-dash"),
}


@register.simple_tag(takes_context=True)
def member_stage(context, member):
    """The member's stage, since, warning, explanation and history (None before the first run)."""
    request = context.get("request")
    tenant = getattr(request, "tenant", None) if request else None
    if tenant is None or member is None:
        return None
    return queries.member_stage(tenant, member)


@register.inclusion_tag("lifecycle/_stage_badge.html")
def stage_badge(stage, label=None, warning=False):
    background, colour, icon = STAGE_STYLE.get(stage, ("#f1f2f6", "#40455a", "circle"))
    return {
        "stage": stage, "label": label or (Stage(stage).label if stage in Stage.values else stage),
        "background": background, "colour": colour, "icon": icon, "warning": warning,
    }


@register.filter
def stage_label(value):
    return Stage(value).label if value in Stage.values else value
