from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "amodal_site"
    verbose_name = "amodal site"

    def ready(self) -> None:
        from core.agent_folder import load_current_agent_or_exit

        # Listed last in INSTALLED_APPS: every app has registered its agent folder part by now, whatever
        # the order the others are listed in (it also orders their tools and prompt sections). A broken
        # folder stops start-up here, with every problem and no traceback.
        load_current_agent_or_exit()
