from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents.agent_folder import current_agent, load_current_agent_or_exit
        from memory.config import memory_config_from
        from scoping.authentication import require_scope_from

        load_current_agent_or_exit()
        require_scope_from(lambda: current_agent().require_scope)
        memory_config_from(lambda: current_agent().memory)
