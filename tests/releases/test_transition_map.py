"""Every status write goes through its transition map: each edge the map lacks is tried, and each is refused
with a TransitionNotAllowed (HTTP 409) that names both states, leaving the row as it was."""
import pytest
from django.db import transaction

from releases.choices import ALLOWED_TRANSITIONS, ReleaseStatus
from releases.errors import TransitionNotAllowed
from releases.models import Release
from releases.services import Actor, _move, release_worker_transition

ILLEGAL = [(a, b) for a in ReleaseStatus.values for b in ReleaseStatus.values if b not in ALLOWED_TRANSITIONS[a]]


def test_the_map_has_illegal_edges_to_try():
    assert len(ILLEGAL) > 100 and (ReleaseStatus.DEPLOYING, ReleaseStatus.SUPERSEDED) in ILLEGAL


@pytest.mark.django_db
def test_every_illegal_release_edge_is_refused_on_both_write_paths(make_release):
    release = make_release("v1.0.0")
    for from_status, to_status in ILLEGAL:
        Release.objects.filter(pk=release.pk).update(status=from_status)  # set up the state under test
        release.refresh_from_db()
        with pytest.raises(TransitionNotAllowed, match=f"{from_status}.*{to_status}"):
            with transaction.atomic():
                _move(release, to_status=to_status, actor=Actor.system("test"), action="test")
        with pytest.raises(TransitionNotAllowed, match="not in the transition map"):
            release_worker_transition(release_id=release.pk, from_statuses={from_status}, to_status=to_status,
                                      actor_name="test", action="test")
        assert Release.objects.get(pk=release.pk).status == from_status


@pytest.mark.django_db
def test_a_legal_edge_still_moves(make_release):
    release = make_release("v1.0.0")
    assert release_worker_transition(release_id=release.pk, from_statuses={ReleaseStatus.READY},
                                     to_status=ReleaseStatus.REJECTED, actor_name="test", action="test")
    assert Release.objects.get(pk=release.pk).status == ReleaseStatus.REJECTED
