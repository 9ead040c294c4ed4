"""One signal per run (never per member) so that higher apps can react to new stages and metrics.

run_finished(tenant_id, run_id, member_ids): a scoring run committed. ``member_ids`` lists the
members an incremental run re-scored, or is None when the run covered every member.
"""
from django.dispatch import Signal

run_finished = Signal()
