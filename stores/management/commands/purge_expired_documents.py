from django.core.management.base import BaseCommand, CommandError

from stores.services import PURGE_BATCH, purge_expired_documents


class Command(BaseCommand):
    help = (
        "Delete store documents whose TTL has passed, in every scope, in batches. Safe to run from cron "
        "as often as you like: a second run finds nothing to do."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH,
            help=f"Documents deleted per transaction (default {PURGE_BATCH}).",
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        purged = purge_expired_documents(batch_size=options["batch_size"])
        self.stdout.write(f"Purged {purged} expired document{'' if purged == 1 else 's'}.")
