from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents.agent_folder import current_agent, load_current_agent_or_exit
        from agents.memory import memory_prompt_section, memory_tools
        from core.tools import register_prompt_section, register_tool_factory
        from scoping.authentication import require_scope_from

        load_current_agent_or_exit()
        require_scope_from(lambda: current_agent().require_scope)
        register_tool_factory(memory_tools)
        register_prompt_section(memory_prompt_section)
