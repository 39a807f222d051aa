from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "stores"
    verbose_name = "Stores"

    def ready(self) -> None:
        from core.agent_folder import register_folder_part
        from core.tools import register_prompt_section, register_tool_factory
        from scoping.scope_data import register_scope_data
        from stores.definitions import STORES
        from stores.scope_data import KINDS
        from stores.tools import store_tools, stores_prompt_section

        register_folder_part(STORES)
        register_tool_factory(store_tools)
        register_prompt_section(stores_prompt_section)
        for kind in KINDS:  # a scope's data (export, erase)
            register_scope_data(kind)
