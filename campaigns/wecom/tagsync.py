"""Our tag groups and tags mirrored as WeCom corp tags, and marked on guides' contacts, so that
guides can filter their customers by our tags inside WeCom too.

One corp tag group per tag group (groups without tags are skipped: WeCom has no empty groups);
WeComTagLink keeps our id ↔ WeCom's id, so renames are edits. A link outlives its group or tag,
so a group or tag deleted here (or a group left without tags) is deleted in WeCom by the next run,
and a run that WeCom refused leaves the link for the one after.
Marking is per contact in WeCom (mark_tag takes one guide and one customer), so the work is the
difference between the tags members hold and WeComMarkedTag, read one member-id range at a time;
only contacts whose tags changed cost an API call. A rate limit or busy answer stops the run
with what is done kept: the next run carries on from the difference.
"""
import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Count, Max

from members.models import ContactStatus, Member
from tagging.models import MemberTag, Tag, TagGroup

from ..models import WeComMarkedTag, WeComTagLink
from .client import WeComClient, WeComError

log = logging.getLogger(__name__)

MARK_BATCH = 500


def sync_tags(tenant, as_of, batch=MARK_BATCH):
    """Returns counts: groups/tags created, renamed, deleted; contacts marked and failed; and
    ``error`` when the run stopped early."""
    summary = {"groups_created": 0, "tags_created": 0, "renamed": 0, "deleted": 0,
               "contacts_marked": 0, "contacts_failed": 0, "error": ""}
    client = WeComClient.for_tenant(tenant)
    if client is None:
        summary["error"] = "WeCom corp id and secret are not set."
        return summary
    try:
        sync_corp_tags(tenant, client, as_of, summary)
        mark_contacts(tenant, client, as_of, summary, batch)
    except WeComError as exc:
        log.warning("wecom tag sync for %s stopped: %s", tenant.slug, exc)
        summary["error"] = str(exc)[:300]
    return summary


def sync_corp_tags(tenant, client, as_of, summary):
    remote = {g["group_id"]: g for g in client.get_corp_tag_list()}
    links = delete_gone(client, remote, list(WeComTagLink.objects.all()), summary)
    group_links = {link.group_id: link for link in links if link.tag_id is None}
    tag_links = {link.tag_id: link for link in links if link.tag_id is not None}
    groups = TagGroup.objects.prefetch_related("tags").order_by("position", "pk")
    for group in groups:
        tags = sorted(group.tags.all(), key=lambda t: (t.position, t.pk))
        group_link = group_links.get(group.pk)
        remote_group = remote.get(group_link.wecom_id) if group_link else None
        if group_link and remote_group is None:
            # Deleted in WeCom by someone: make it again.
            WeComTagLink.objects.filter(group=group).delete()
            tag_links = {k: v for k, v in tag_links.items() if v.group_id != group.pk}
            group_link = None
        if not tags:
            continue
        remote_tag_ids = {t["id"] for t in remote_group["tag"]} if remote_group else set()
        stale = [t.pk for t in tags if t.pk in tag_links and tag_links[t.pk].wecom_id not in remote_tag_ids]
        if stale:
            WeComTagLink.objects.filter(tag_id__in=stale).delete()
            for pk in stale:
                tag_links.pop(pk)
        missing = [t for t in tags if t.pk not in tag_links]
        if group_link is None or missing:
            made = client.add_corp_tag(
                [{"name": t.name, "order": t.position} for t in missing],
                group_id=group_link.wecom_id if group_link else None, group_name=group.name, order=group.position,
            )
            if group_link is None:
                group_link = WeComTagLink.objects.create(
                    tenant=tenant, group=group, wecom_id=made["group_id"], name=group.name, synced_at=as_of,
                )
                summary["groups_created"] += 1
            by_name = {t["name"]: t["id"] for t in made.get("tag", [])}
            for tag in missing:
                if tag.name in by_name:
                    tag_links[tag.pk] = WeComTagLink.objects.create(
                        tenant=tenant, group=group, tag=tag, wecom_id=by_name[tag.name], name=tag.name, synced_at=as_of,
                    )
                    summary["tags_created"] += 1
        if group_link.name != group.name:
            client.edit_corp_tag(group_link.wecom_id, group.name)
            WeComTagLink.objects.filter(pk=group_link.pk).update(name=group.name, synced_at=as_of)
            summary["renamed"] += 1
        for tag in tags:
            link = tag_links.get(tag.pk)
            if link is not None and link.name != tag.name:
                client.edit_corp_tag(link.wecom_id, tag.name)
                WeComTagLink.objects.filter(pk=link.pk).update(name=tag.name, synced_at=as_of)
                summary["renamed"] += 1
        if remote_group:
            ours = {tag_links[t.pk].wecom_id for t in tags if t.pk in tag_links}
            gone = [t["id"] for t in remote_group["tag"] if t["id"] not in ours]
            if gone:
                client.del_corp_tag(tag_ids=gone)
                summary["deleted"] += len(gone)


def delete_gone(client, remote, links, summary):
    """Delete in WeCom the corp tag groups of our deleted or emptied groups and the corp tags of
    our deleted tags, then their links; returns the links left. ``remote`` (WeCom's groups by id)
    is brought in step. A WeCom failure raises before any link is deleted, so the next run tries
    again; what WeCom no longer has is only forgotten here."""
    tag_counts = dict(TagGroup.objects.annotate(n=Count("tags")).values_list("pk", "n"))
    live_tags = set(Tag.objects.values_list("pk", flat=True))
    dead_groups = {link.group_id for link in links if tag_counts.get(link.group_id, 0) == 0}
    dead = [
        link for link in links
        if link.group_id in dead_groups or (link.tag_id is not None and link.tag_id not in live_tags)
    ]
    if not dead:
        return links
    remote_tags = {t["id"] for g in remote.values() for t in g["tag"]}
    group_ids = sorted({link.wecom_id for link in dead if link.tag_id is None and link.wecom_id in remote})
    tag_ids = sorted({
        link.wecom_id for link in dead
        if link.tag_id is not None and link.group_id not in dead_groups and link.wecom_id in remote_tags
    })
    if group_ids or tag_ids:
        client.del_corp_tag(tag_ids=tag_ids, group_ids=group_ids)
        summary["deleted"] += len(group_ids) + len(tag_ids)
    WeComTagLink.objects.filter(pk__in=[link.pk for link in dead]).delete()
    for group_id in group_ids:
        remote.pop(group_id)
    deleted_tags = set(tag_ids)
    for group_id, group in list(remote.items()):
        kept = [t for t in group["tag"] if t["id"] not in deleted_tags]
        if len(kept) < len(group["tag"]):
            group["tag"] = kept
            if not kept:
                # WeCom deletes a group with its last tag.
                remote.pop(group_id)
    dead_pks = {link.pk for link in dead}
    return [link for link in links if link.pk not in dead_pks]


def mark_contacts(tenant, client, as_of, summary, batch):
    wecom_ids = dict(WeComTagLink.objects.filter(tag__isnull=False).values_list("tag_id", "wecom_id"))
    if not wecom_ids:
        return
    contacts = Member.objects.filter(
        wecom_external_userid__isnull=False, contact_status=ContactStatus.ACTIVE,
        owner_guide__wecom_userid__gt="",
    ).order_by("pk")
    after = 0
    while True:
        rows = list(contacts.filter(pk__gt=after).values_list("pk", "wecom_external_userid", "owner_guide__wecom_userid")[:batch])
        if not rows:
            return
        after = rows[-1][0]
        ids = [pk for pk, _ext, _user in rows]
        want, have, marked = defaultdict(set), defaultdict(set), {}
        for member_id, tag_id in MemberTag.objects.filter(member_id__in=ids, tag_id__in=list(wecom_ids)).values_list(
                "member_id", "tag_id"):
            want[member_id].add(tag_id)
        for pk, member_id, tag_id in WeComMarkedTag.objects.filter(member_id__in=ids).values_list(
                "pk", "member_id", "tag_id"):
            have[member_id].add(tag_id)
            marked[member_id, tag_id] = pk
        added, removed = [], []
        try:
            for member_id, external_userid, userid in rows:
                add = want[member_id] - have[member_id]
                remove = have[member_id] - want[member_id]
                if not add and not remove:
                    continue
                try:
                    client.mark_tag(userid, external_userid, add_tag=[wecom_ids[t] for t in sorted(add)],
                                    remove_tag=[wecom_ids[t] for t in sorted(remove) if t in wecom_ids])
                except WeComError as exc:
                    if exc.transient:
                        raise
                    log.warning("wecom tags of member %s not marked: %s", member_id, exc)
                    summary["contacts_failed"] += 1
                    continue
                added += [(member_id, t) for t in add]
                removed += [marked[member_id, t] for t in remove]
                summary["contacts_marked"] += 1
        finally:
            _record_marks(tenant, added, removed, as_of)


def _record_marks(tenant, added, removed, as_of):
    with transaction.atomic():
        WeComMarkedTag.objects.bulk_create(
            [WeComMarkedTag(tenant=tenant, member_id=m, tag_id=t, marked_at=as_of) for m, t in added],
            batch_size=1000, ignore_conflicts=True,
        )
        if removed:
            WeComMarkedTag.objects.filter(pk__in=removed).delete()


def linked_counts():
    """(tags linked to WeCom, when the links last changed) for the settings page."""
    figures = WeComTagLink.objects.filter(tag__in=Tag.objects.all()).aggregate(n=Count("pk"), at=Max("synced_at"))
    return figures["n"], figures["at"]
