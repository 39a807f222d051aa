from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections and credentials"

    def ready(self) -> None:
        from connections.services import record_user_verdict
        from connections.tools import request_tool
        from core.tools import register_message_hook, register_tool_factory

        register_tool_factory(request_tool)
        register_message_hook(record_user_verdict)
