from django.apps import AppConfig


class MemoryAppConfig(AppConfig):
    """Memory (SPEC §6). Named MemoryAppConfig: `memory.config.MemoryConfig` is amodal.json's `memory`."""

    name = "memory"
    verbose_name = "Memory"

    def ready(self) -> None:
        from core.tools import register_prompt_section, register_tool_factory
        from memory.prompt import memory_prompt_section
        from memory.scope_data import KINDS
        from memory.tools import memory_tools
        from scoping.scope_data import register_scope_data

        register_tool_factory(memory_tools)
        register_prompt_section(memory_prompt_section)
        for kind in KINDS:  # a scope's data (export, erase)
            register_scope_data(kind)
