from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoping.context import InvalidScope
from scoping.tokens import mint_token


def parse_context_pairs(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--context expects key=value, got {pair!r}.")
        context[key] = value
    return context


class Command(BaseCommand):
    help = "Print a signed JWT for a scope (for demos, tests and trusted back ends)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scope", required=True, help="The scope_id claim ('' for the global scope).")
        parser.add_argument(
            "--context",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A scopeContext entry; repeat for several.",
        )
        parser.add_argument("--sub", default="demo-user", help="The subject (user id) claim.")
        parser.add_argument("--ttl", type=int, default=3600, help="Seconds until the token expires.")
        parser.add_argument("--private-key", default=None, help="PEM private key file, for RS256/ES256 deployments.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["ttl"] <= 0:
            raise CommandError("--ttl must be a positive number of seconds.")
        try:
            token = mint_token(
                scope_id=options["scope"],
                context=parse_context_pairs(options["context"]),
                sub=options["sub"],
                ttl_seconds=options["ttl"],
                private_key_file=options["private_key"],
            )
        except (InvalidScope, ValueError, OSError) as exc:
            raise CommandError(str(exc))
        self.stdout.write(token)
