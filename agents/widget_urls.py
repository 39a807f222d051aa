"""The chat widget's files (`/widget/amodal/...`, always) and its demo host page (`/widget/demo/`, development
only). Included by amodal_site/urls.py at "widget/"."""

from django.urls import path

from agents import widget_views

app_name = "widget"

urlpatterns = [
    path("amodal/<str:filename>", widget_views.widget_asset, name="asset"),
    path("demo/", widget_views.demo_page, name="demo"),
    path("demo/token", widget_views.demo_token, name="demo-token"),
]
