"""Verify the audit trail's hash chain: exit 0 and print the head hash, or exit 1 naming the first broken link."""
from django.core.management.base import BaseCommand, CommandError

from releases import audit_chain
from releases.models import AuditEvent


class Command(BaseCommand):
    help = "Check every audit row's hash and its link to the row before; names the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--expect-head", default="",
                            help="the head hash you noted earlier: also detects a truncated and rebuilt table")

    def handle(self, *args, **options):
        state = audit_chain.verify(AuditEvent.objects.all())
        if not state.ok:
            raise CommandError(f"audit chain BROKEN at row #{state.first_broken_id}: {state.problem} "
                               f"({state.rows} rows checked)")
        expected = options["expect_head"]
        if expected and not AuditEvent.objects.filter(row_hash=expected).exists():
            raise CommandError(f"audit chain does not contain the head {expected[:16]}... you noted: rows before it "
                               f"were removed and the chain rebuilt")
        self.stdout.write(f"audit chain OK: {state.rows} rows, head {state.head or '(empty)'}")
