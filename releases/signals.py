"""Signals other apps listen to. `releases` imports no other app; pipelines and routing react through these.

release_transitioned is sent after the transaction commits, once per status or weight change, with keyword
arguments release_id, from_status, to_status, from_weight, to_weight, actor_name. Receivers must be quick
(enqueue a Celery task with the id) and must not raise: the change is already committed.
"""
from django.dispatch import Signal

release_transitioned = Signal()

# audit_recorded is sent with `audit` (the AuditEvent just written) INSIDE the writer's transaction, right after
# the row: a receiver may write rows of its own in the same transaction (notifications queue their deliveries
# there, so an event and its deliveries commit or vanish together) but must do no network I/O, lock no row a
# transaction may hold before writing audit rows (the chain lock is the last lock), and must not raise
# (it is sent with send_robust; a receiver uses a savepoint of its own).
audit_recorded = Signal()

# Sent after commit when a release starts waiting for approvals: built in an environment that requires them
# (step_weight 0), arrived at the rung below a gray step that requires them (step_weight = that rung), or its
# approvals went stale. Keyword arguments: release_id, step_weight, missing ({role: count}), reason (words).
# The notification channels hook in here ("approval_needed"); receivers must be quick and must not raise.
approval_needed = Signal()
