"""`python manage.py generate_demo_data --scopes N --sessions M --usage-rows K [--seed S] [--days D]`

Fills an empty database with realistic demo data for Studio (see studio/demo/ for its shape).
With sessions already present it does nothing (exit 0, so `make run` can call it every time) unless
`--clear` is given, which first deletes every session, message, usage row, scope, memory entry and store
document (development databases only).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from studio.demo import DemoGenerator, DemoOptions, clear_runtime_data, existing_sessions


class Command(BaseCommand):
    help = "Generate demo scopes, sessions, messages with tool calls, usage rows, memory and store documents."

    def add_arguments(self, parser):
        parser.add_argument("--scopes", type=int, default=40, help="Number of scopes (default 40).")
        parser.add_argument("--sessions", type=int, default=400, help="Number of sessions (default 400).")
        parser.add_argument(
            "--usage-rows",
            type=int,
            default=2000,
            help="Number of model calls, i.e. usage rows and assistant messages (default 2000).",
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
        parser.add_argument("--days", type=int, default=90, help="Spread over the last D days (default 90).")
        parser.add_argument("--batch", type=int, default=4000, help="Sessions written per batch (default 4000).")
        parser.add_argument(
            "--clear",
            action="store_true",
            help="Delete existing sessions, usage, scopes, memory and store documents first.",
        )
        parser.add_argument("--no-memory", action="store_true", help="Do not add memory entries.")
        parser.add_argument("--no-stores", action="store_true", help="Do not add store documents.")

    def handle(self, *args, **options):
        for name in ("scopes", "sessions", "usage_rows", "days", "batch"):
            if options[name] < (1 if name in ("days", "batch", "scopes") else 0):
                raise CommandError(f"--{name.replace('_', '-')} must be a positive number.")
        present = existing_sessions()
        if present and not options["clear"]:
            self.stdout.write(
                f"Demo data not generated: the database already has {present:,} sessions "
                "(use --clear to replace everything)."
            )
            return
        if options["clear"]:
            clear_runtime_data(log=self.stdout.write)
        generator = DemoGenerator(
            DemoOptions(
                scopes=options["scopes"],
                sessions=options["sessions"],
                usage_rows=options["usage_rows"],
                seed=options["seed"],
                days=options["days"],
                batch_sessions=options["batch"],
                memory=not options["no_memory"],
                stores=not options["no_stores"],
            ),
            log=self.stdout.write,
        )
        self.stdout.write(
            f"Generating demo data: {options['scopes']:,} scopes, {options['sessions']:,} sessions, "
            f"{options['usage_rows']:,} usage rows over {options['days']} days (seed {options['seed']})"
        )
        summary = generator.run()
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {summary.seconds:.1f} s: {summary.scopes:,} scopes, {summary.sessions:,} sessions, "
                f"{summary.messages:,} messages, {summary.usage_rows:,} usage rows, {summary.deployments} deploys, "
                f"{summary.memory_entries:,} memory entries, {summary.store_documents:,} store documents "
                f"({summary.store_versions:,} previous versions)."
            )
        )
        for note in summary.notes:
            self.stdout.write(f"  note: {note}")
