from django.apps import AppConfig


class FinanceAppConfig(AppConfig):
    name = "examples.finance_app"
    label = "finance_app"
    verbose_name = "Demo finance app API"
