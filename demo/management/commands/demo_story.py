"""python manage.py demo_story: play the demo story (demo/story.py), then keep running until stopped.

Under `make run` it is one of honcho's processes: honcho stops everything when any process exits, so after the
story it waits for Ctrl-C (SIGINT/SIGTERM) unless --exit is given (tests, scripts).
"""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from demo.story import Story, StoryStopped, closing_words, follow


class Command(BaseCommand):
    help = ("Play the demo story: v1.0.0 stable, v1.1.0 ramped by the SLA gate, v1.2.0 rolled back, v1.2.1 paused by "
            "the LLM quality gate (its answers got worse), v1.3.0 ready; then prod.")

    def add_arguments(self, parser):
        parser.add_argument("--service", default="agent-infer")
        parser.add_argument("--environment", default="staging")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Rollgate's address, for the links")
        parser.add_argument("--step-timeout", type=float, default=300.0, help="seconds each step may take")
        parser.add_argument("--exit", action="store_true", help="exit when the story is over (default: wait)")

    def handle(self, *args, service, environment, url, step_timeout, exit, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

        def out(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            story = Story(service=service, environment=environment, out=out, url=url, step_timeout_s=step_timeout,
                          stop=stop)
        except LookupError as error:
            raise CommandError(str(error)) from None
        try:
            ok = story.run()
        except StoryStopped:
            out("demo story: stopped")
            return
        # Where each step ended, then where each version is now (v1.0.0 ended live and was replaced by v1.1.0).
        summary = ", ".join(f"{tag} {outcome}" for tag, outcome in story.outcomes.items())
        story.say(f"story {'complete' if ok else 'incomplete'}; the steps ended: {summary}")
        story.say("now: " + story.current_states())
        for line in closing_words(story):
            out(line)
        if exit:
            if not ok:
                raise CommandError("the demo story did not reach every expected end state")
            return
        follow(story, stop)  # narrate what the user (and the gate) do next, until Ctrl-C
