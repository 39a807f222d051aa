"""Mark sessions whose process died mid-message as `interrupted` and free them.

A dead process's lease expires by itself (`AMODAL_LEASE_SECONDS`) and the session's next message takes
it over; this sweep only corrects the status operators see in Studio for sessions that get no next
message. Running servers also sweep while they run messages; a cron entry every minute covers an idle
deployment.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from agents import services


class Command(BaseCommand):
    help = "Mark sessions whose lease expired (their process died mid-message) as interrupted."

    def handle(self, *args, **options):
        released = services.release_expired_leases()
        self.stdout.write(f"{released} session{'s' if released != 1 else ''} released as interrupted.")
