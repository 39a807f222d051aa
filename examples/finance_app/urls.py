"""Routes of the demo finance app API (mounted at /demo/finance-api/ when AMODAL_DEMO_API is on)."""

from django.urls import path

from . import views

app_name = "finance_app"

urlpatterns = [
    path("households/me", views.household_me, name="household-me"),
    path("accounts", views.account_list, name="accounts"),
    path("accounts/<str:account_id>", views.account_detail, name="account-detail"),
    path("transactions", views.transaction_list, name="transactions"),
    path("spending/summary", views.spending_summary, name="spending-summary"),
    path("transfers", views.create_transfer, name="transfers"),
]
