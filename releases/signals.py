"""Signals other apps listen to. `releases` imports no other app; pipelines and routing react through these.

release_transitioned is sent after the transaction commits, once per status or weight change, with keyword
arguments release_id, from_status, to_status, from_weight, to_weight, actor_name. Receivers must be quick
(enqueue a Celery task with the id) and must not raise: the change is already committed.
"""
from django.dispatch import Signal

release_transitioned = Signal()
