from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents import scope_data
        from agents.agent_folder import KNOWLEDGE, MANIFEST, manifest_of
        from core.agent_folder import current_agent, register_folder_part
        from memory.config import memory_config_from
        from scoping.authentication import require_scope_from
        from scoping.scope_data import register_scope_data

        register_folder_part(MANIFEST)
        register_folder_part(KNOWLEDGE)
        require_scope_from(lambda: manifest_of(current_agent()).require_scope)
        memory_config_from(lambda agent: manifest_of(agent).memory)
        # A scope's data (export, erase): in this order, a kind after those its rows point to.
        for kind in scope_data.KINDS:
            register_scope_data(kind)
