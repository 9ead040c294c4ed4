"""Churn alerts: hand members who deleted their guide to a campaign (an SMS recall, the farewell survey)."""
from django.db import transaction
from django.utils.translation import gettext as _

from members.models import Member

from . import services
from .models import Campaign, Enrolment


def active_campaigns():
    return Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("name")


def hand_to_campaign(tenant, campaign, member_ids, as_of):
    """Enrol these members in ``campaign`` through the campaign's own enrolment, so a second
    hand-over (a double click, a retry) enrols nobody twice. Returns {"selected", "enrolled",
    "already", "not_in_audience"}; ``already`` counts members with an enrolment in it before."""
    if campaign.status != Campaign.Status.ACTIVE:
        raise services.CampaignError({"campaign": [_("Choose an active campaign.")]})
    member_ids = sorted(set(member_ids))
    if not member_ids:
        raise services.CampaignError({"members": [_("Select at least one member.")]})
    with transaction.atomic():
        enrolments = Enrolment.objects.filter(campaign=campaign, member_id__in=member_ids)
        before = set(enrolments.values_list("member_id", flat=True))
        enrolled = services.enrol_members(campaign, Member.objects.filter(pk__in=member_ids), as_of)
        again = set(enrolments.filter(enrolled_at=as_of).values_list("member_id", flat=True)) if enrolled else set()
        already = len(before - again)
    if enrolled:
        from .tasks import run_due_steps

        transaction.on_commit(lambda: run_due_steps.delay(tenant.pk, as_of.isoformat(), [campaign.pk]))
    return {
        "selected": len(member_ids), "enrolled": enrolled, "already": already,
        "not_in_audience": len(member_ids) - enrolled - already,
    }
