from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents.agent_folder import load_current_agent_or_exit

        load_current_agent_or_exit()
