"""Seed a large fleet for measuring: services x environments x releases, with the rows the product writes.

    manage.py seed_fleet --services 5000 --environments 4 --releases-per 20

Each (service, environment) pair gets a history, oldest first: superseded releases (every 7th build failed, every
11th rolled back), then the live one; staging ends with a canary in gray (5-50 %), prod with a release waiting for
approvals on 4 % of the services and a failed build on 10 %. Every release has the audit rows the services write
(release.create, pipeline.succeeded/failed, release.promote, release.supersede / rollback), with timestamps spread
over the last weeks so time order and id order differ as they do in a real database.

Rows are written with bulk_create in chunks of services (bounded memory); it adds to what is there (service names
continue from the number of services already seeded), so 1 000 then 4 000 more gives the 5 000-service fleet.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from releases.choices import ReleaseStatus as S
from releases.choices import Role, VersionKind
from releases.models import AgentService, Approval, AuditEvent, Environment, GrayPhase, Release, Version

ENVIRONMENTS = [("dev", {}), ("test", {}), ("staging", {}), ("prod", {"release_manager": 1, "qa": 1}),
                ("canary-eu", {}), ("perf", {})]
PREFIX = "fleet-"
CHUNK = 100  # services per bulk write


@contextmanager
def keep_given_timestamps(*models):
    """bulk_create of history: the given created_at values stay (auto_now_add would set them all to now)."""
    fields = [field for model in models for field in model._meta.concrete_fields
              if getattr(field, "auto_now_add", False)]
    for field in fields:
        field.auto_now_add = False
    try:
        yield
    finally:
        for field in fields:
            field.auto_now_add = True


def seed_users():
    users = get_user_model().objects
    made = {}
    for username, role in (("fleet-dev", Role.DEVELOPER), ("fleet-rm", Role.RELEASE_MANAGER), ("fleet-qa", Role.QA),
                           ("fleet-auditor", Role.AUDITOR)):
        user = users.filter(username=username).first()
        if user is None:
            user = users.create_user(username, password="fleet-password")
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        made[role] = user
    return made


def seed_environments(count: int) -> list[Environment]:
    envs = []
    for position, (name, approvals) in enumerate(ENVIRONMENTS[:count]):
        env, created = Environment.objects.get_or_create(name=name, defaults={
            "namespace": f"agent-{name}", "position": position, "protected": bool(approvals),
            "required_approvals": approvals})
        if created:
            GrayPhase.objects.bulk_create(GrayPhase(environment=env, position=i, weight=w)
                                          for i, w in enumerate([5, 10, 30, 50, 100]))
        envs.append(env)
    return envs


def _audit(release, at, action, actor, from_state="", to_state="", reason=""):
    return AuditEvent(actor=actor, actor_name=actor.username if actor else "pipeline", action=action,
                      object_type="release", object_id=str(release.pk), release=release, service_id=release.service_id,
                      environment_id=release.environment_id, from_state=from_state, to_state=to_state, reason=reason,
                      details={"tag": release.version.tag}, created_at=at)


def seed_chunk(services, envs, per: int, users, rng: random.Random, now, span: timedelta):
    dev, rm = users[Role.DEVELOPER], users[Role.RELEASE_MANAGER]
    versions = Version.objects.bulk_create(
        Version(service=s, tag=f"v1.{k}.0", kind=VersionKind.RELEASE, commit_sha=f"{s.pk:020x}{k:020x}",
                image_reference=f"{s.image_repository}:v1.{k}.0", created_at=now - span + span * k / per)
        for s in services for k in range(per))
    by_service = {}
    for version in versions:
        by_service.setdefault(version.service_id, []).append(version)
    releases = []
    for s in services:
        fate = rng.random()
        for env in envs:
            for k in range(per):
                at = now - span + span * k / per + timedelta(seconds=rng.randint(0, 3600),
                                                             microseconds=rng.randint(0, 999999))
                last, second_last = k == per - 1, k == per - 2
                status, weight = S.SUPERSEDED, 100
                if k % 7 == 3:
                    status, weight = S.CI_FAILED, 0
                elif k % 11 == 5:
                    status, weight = S.ROLLED_BACK, 0
                if second_last:
                    status, weight = S.LIVE, 100
                if last:
                    status, weight = S.SUPERSEDED, 100
                    if env.name == "staging":
                        status, weight = S.GRAY, rng.choice([5, 10, 30, 50])
                    elif env.name == "prod" and fate < 0.04:
                        status, weight = S.READY, 0
                    elif env.name == "prod" and fate < 0.14:
                        status, weight = S.CI_FAILED, 0
                    else:  # the newest one went live, the one before it was superseded
                        status = S.LIVE
                        releases[-1].status = S.SUPERSEDED
                releases.append(Release(service=s, environment=env, version=by_service[s.pk][k], status=status,
                                        gray_weight=weight, started_by=dev, created_at=at,
                                        status_changed_at=at + timedelta(minutes=20)))
    Release.objects.bulk_create(releases, batch_size=5000)
    events, approvals = [], []
    for release in releases:
        at = release.created_at
        events.append(_audit(release, at, "release.create", dev, to_state=S.PENDING))
        if release.status == S.CI_FAILED:
            events.append(_audit(release, at + timedelta(minutes=6), "pipeline.failed", None, S.BUILDING,
                                 S.CI_FAILED, "unit tests failed"))
            continue
        events.append(_audit(release, at + timedelta(minutes=6), "pipeline.succeeded", None, S.BUILDING, S.READY))
        if release.status == S.READY:
            if release.pk % 2:
                approvals.append(Approval(release=release, user=rm, role=Role.RELEASE_MANAGER, decision="approved",
                                          created_at=at + timedelta(minutes=9)))
            continue
        events.append(_audit(release, at + timedelta(minutes=10), "release.promote", rm, S.READY, S.GRAY))
        if release.status == S.SUPERSEDED:
            events.append(_audit(release, at + timedelta(minutes=15), "release.promote", rm, S.GRAY, S.LIVE))
            events.append(_audit(release, at + timedelta(days=1), "release.supersede", rm, S.LIVE, S.SUPERSEDED))
        elif release.status == S.ROLLED_BACK:
            events.append(_audit(release, at + timedelta(minutes=14), "release.rollback", None, S.GRAY,
                                 S.ROLLED_BACK, "SLA gate: error rate 4.1 % > 1 %"))
        elif release.status == S.LIVE:
            events.append(_audit(release, at + timedelta(minutes=15), "release.promote", rm, S.GRAY, S.LIVE))
    AuditEvent.objects.bulk_create(events, batch_size=5000)
    Approval.objects.bulk_create(approvals, batch_size=5000)
    return len(releases), len(events)


class Command(BaseCommand):
    help = "Seed a large fleet (services x environments x releases, with audit rows) for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--services", type=int, required=True, help="services to add")
        parser.add_argument("--environments", type=int, default=4, help=f"1-{len(ENVIRONMENTS)} (default 4)")
        parser.add_argument("--releases-per", type=int, default=20, help="releases per service and environment")
        parser.add_argument("--seed", type=int, default=16, help="random seed (default 16)")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, services: int, environments: int, releases_per: int, seed: int, quiet: bool, **_):
        if not 1 <= environments <= len(ENVIRONMENTS):
            raise CommandError(f"--environments: from 1 to {len(ENVIRONMENTS)}")
        if releases_per < 2:
            raise CommandError("--releases-per: at least 2 (a superseded and a live release)")
        if services < 1:
            raise CommandError("--services: at least 1")
        rng = random.Random(seed)
        started = time.monotonic()
        users = seed_users()
        envs = seed_environments(environments)
        first = AgentService.objects.filter(name__startswith=PREFIX).count()
        now, span = timezone.now(), timedelta(days=60)
        total_releases = total_events = 0
        with keep_given_timestamps(Version, Release, AuditEvent, Approval):
            for start in range(first, first + services, CHUNK):
                names = range(start, min(start + CHUNK, first + services))
                with transaction.atomic():
                    chunk = AgentService.objects.bulk_create(
                        AgentService(name=f"{PREFIX}{i:05d}",
                                     image_repository=f"registry.example.com/agent/{PREFIX}{i:05d}")
                        for i in names)
                    made = seed_chunk(chunk, envs, releases_per, users, rng, now, span)
                total_releases += made[0]
                total_events += made[1]
                if not quiet and (start - first) % 1000 == 0:
                    self.stdout.write(f"  {start - first + len(names)} services, {total_releases} releases, "
                                      f"{total_events} audit events ({time.monotonic() - started:.0f} s)")
        if not quiet:
            self.stdout.write(self.style.SUCCESS(
                f"seeded {services} services x {environments} environments: {total_releases} releases, "
                f"{total_events} audit events in {time.monotonic() - started:.0f} s"))
