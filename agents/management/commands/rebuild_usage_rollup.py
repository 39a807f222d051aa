"""`python manage.py rebuild_usage_rollup [--from DAY] [--to DAY] [--check]`

Recomputes the usage rollup (agents.usage_rollup) from the usage rows: the whole table, or the UTC days
from/to (inclusive), in one transaction, and prints the counts. Database triggers keep the rollup in step
with every write, so this is for repairs: after a TRUNCATE of the usage table without the rollup, or rows
written with the triggers disabled. `--check` compares instead and exits with an error when they differ.
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from agents import usage_rollup
from agents.usage_rollup import DayRange

SHOWN_DIFFERENCES = 20


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} must be a day as YYYY-MM-DD, not {value!r}.")


class Command(BaseCommand):
    help = "Recompute the usage rollup (Cost & Usage) from the usage rows, or check it with --check."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", metavar="DAY", help="First UTC day (YYYY-MM-DD, inclusive).")
        parser.add_argument("--to", dest="last", metavar="DAY", help="Last UTC day (YYYY-MM-DD, inclusive).")
        parser.add_argument("--check", action="store_true", help="Compare only; exit 1 when the rollup differs.")

    def handle(self, *args, **options) -> None:
        days = DayRange(parse_day(options["first"], "--from"), parse_day(options["last"], "--to"))
        if days.first and days.last and days.last < days.first:
            raise CommandError("--to is before --from.")
        if options["check"]:
            self.check_rollup(days)
            return
        result = usage_rollup.rebuild(connection, days)
        self.stdout.write(
            f"Usage rollup rebuilt for {days}: {result.usage_rows:,} usage rows in {result.rollup_rows:,} rollup rows "
            f"({result.removed:,} rollup rows replaced), {result.daily_total_rows:,} daily total rows and "
            f"{result.scope_month_rows:,} scope month rows (of the whole months)."
        )

    def check_rollup(self, days: DayRange) -> None:
        differing = usage_rollup.differences(connection, days)
        if not differing:
            self.stdout.write(f"Usage rollup matches the usage rows for {days}.")
            return
        for table, key in differing[:SHOWN_DIFFERENCES]:
            self.stdout.write(f"  differs: {table} {', '.join(map(str, key))}")
        raise CommandError(
            f"The usage rollup differs from the usage rows for {len(differing):,} keys in {days}: "
            "run rebuild_usage_rollup to recompute it."
        )
