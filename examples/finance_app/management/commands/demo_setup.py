"""Prepare a development server for a first look: a staff login and tokens for the demo households."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from agents.agent_folder import manifest_of
from connections.specs import dev_scopes_of
from core.agent_folder import current_agent
from scoping.tokens import mint_token

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "amodal-demo"
TOKEN_TTL_SECONDS = 24 * 3600


class Command(BaseCommand):
    help = "Create the demo staff user and print it with a JWT for each development scope."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        base_url = options["base_url"]
        agent = current_agent()
        manifest = manifest_of(agent)
        lines = [
            "",
            f"  amodal runtime: agent '{manifest.name}' {manifest.version}, deploy {agent.deploy_id}",
            f"  Studio & admin   {base_url}/admin/   login: {DEMO_USERNAME} / {DEMO_PASSWORD}"
            + ("" if created else "  (existing user; password unchanged)"),
            f"  Health           {base_url}/health",
        ]
        for scope_id in sorted(dev_scopes_of(agent)):
            token = mint_token(
                scope_id=scope_id,
                context={"household_id": scope_id},
                sub=f"{scope_id}-owner",
                ttl_seconds=TOKEN_TTL_SECONDS,
            )
            lines += ["", f"  Token for scope {scope_id} (24 h):", f"    {token}"]
        lines.append("")
        self.stdout.write("\n".join(lines))
