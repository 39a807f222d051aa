from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents.agent_folder import load_current_agent_or_exit
        from agents.memory import memory_prompt_section, memory_tools
        from core.tools import register_prompt_section, register_tool_factory

        load_current_agent_or_exit()
        register_tool_factory(memory_tools)
        register_prompt_section(memory_prompt_section)
