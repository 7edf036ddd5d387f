"""Stage and pipeline status writes go through STAGE_TRANSITIONS and PIPELINE_TRANSITIONS: every edge the maps
lack is tried and refused, and the rows stay as they were."""
import pytest

from pipelines import services
from pipelines.models import PIPELINE_TRANSITIONS, STAGE_TRANSITIONS, Pipeline, PipelineStatus, Stage, StageStatus
from releases.choices import ReleaseStatus
from releases.errors import TransitionNotAllowed


@pytest.fixture
def pipeline(make_release):
    release = make_release("v3.0.0-rc1", status=ReleaseStatus.PENDING)
    return services.pipeline_start(release_id=release.pk)


@pytest.mark.django_db
def test_every_illegal_stage_edge_is_refused(pipeline):
    stage = pipeline.stages.get(name="build")
    tried = 0
    for from_status, allowed in STAGE_TRANSITIONS.items():
        for to_status in set(StageStatus.values) - allowed:
            Stage.objects.filter(pk=stage.pk).update(status=from_status)
            with pytest.raises(TransitionNotAllowed, match=f"{from_status} to {to_status}"):
                services._stage_move(Stage.objects.filter(pk=stage.pk), from_statuses=[from_status],
                                     to_status=to_status)
            assert Stage.objects.get(pk=stage.pk).status == from_status
            tried += 1
    assert tried > 20


@pytest.mark.django_db
def test_every_illegal_pipeline_edge_is_refused_or_moves_nothing(pipeline):
    for from_status, allowed in PIPELINE_TRANSITIONS.items():
        for to_status in set(PipelineStatus.values) - allowed:
            Pipeline.objects.filter(pk=pipeline.pk).update(status=from_status)
            with pytest.raises(TransitionNotAllowed):
                services._pipeline_move(pipeline.pk, to_status, from_statuses=[from_status])
            # Without naming a source, only the sources the map allows are matched: nothing moves.
            assert services._pipeline_move(pipeline.pk, to_status) is False
            assert Pipeline.objects.get(pk=pipeline.pk).status == from_status


@pytest.mark.django_db
def test_a_stage_whose_worker_lost_it_cannot_be_finished_by_that_worker(pipeline):
    stage = services.stage_claim(stage_id=pipeline.stages.get(name="prepare").pk, task_id="t1")
    assert services.stage_succeed(stage_id=stage.pk, attempt=stage.attempt)
    # A late second outcome for the same run: succeeded -> failed is not an edge; nothing changes.
    with pytest.raises(TransitionNotAllowed):
        services.stage_fail(stage_id=stage.pk, attempt=stage.attempt, reason="late", from_statuses=(StageStatus.SUCCEEDED,))
    assert Stage.objects.get(pk=stage.pk).status == StageStatus.SUCCEEDED
