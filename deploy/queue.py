"""Queue a deploy task by its stable name once the transaction commits.

Services and drivers queue through here instead of importing deploy.tasks, so no module below the tasks imports
them back (no hidden import cycle).
"""
from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, *args, countdown: float | None = None, **kwargs) -> None:
    def send() -> None:
        # The registered task by name (deploy.apps imports deploy.tasks), so eager mode and routing apply.
        current_app.tasks[task_name].apply_async(args=list(args), kwargs=kwargs or None,
                                                 countdown=max(0.0, float(countdown)) if countdown is not None else None)

    # robust: with the broker down the send fails after the change committed; that must not turn the committed
    # change into an error. The row records what was queued, so the sweeper (deploy/sweeper.py) sends it again.
    transaction.on_commit(send, robust=True)
