from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections and credentials"

    def ready(self) -> None:
        from connections.scope_data import KINDS
        from connections.services import record_user_verdict
        from connections.specs import CONNECTIONS, DEV_SCOPES
        from connections.tools import request_tool
        from core.agent_folder import register_folder_part
        from core.tools import register_message_hook, register_tool_factory
        from scoping.scope_data import register_scope_data

        register_folder_part(CONNECTIONS)
        register_folder_part(DEV_SCOPES)
        register_tool_factory(request_tool)
        register_message_hook(record_user_verdict)
        for kind in KINDS:  # a scope's data (export, erase)
            register_scope_data(kind)
