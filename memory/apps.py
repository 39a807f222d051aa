from django.apps import AppConfig


class MemoryAppConfig(AppConfig):
    """Memory (SPEC §6). Named MemoryAppConfig: `memory.config.MemoryConfig` is amodal.json's `memory`."""

    name = "memory"
    verbose_name = "Memory"

    def ready(self) -> None:
        from core.tools import register_prompt_section, register_tool_factory
        from memory.prompt import memory_prompt_section
        from memory.tools import memory_tools

        register_tool_factory(memory_tools)
        register_prompt_section(memory_prompt_section)
