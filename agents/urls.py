from django.urls import path

from agents import api, views

urlpatterns = [
    path("chat/stream", views.chat_stream, name="chat-stream"),
    path("chat", views.chat_stream, name="chat"),
    path("chat/sync", views.chat_sync, name="chat-sync"),
    path("sessions/history", api.SessionHistoryList.as_view(), name="session-history"),
    path("sessions/history/<str:session_id>", api.SessionHistoryDetail.as_view(), name="session-history-detail"),
    path("sessions/history/<str:session_id>/feedback", api.SessionFeedback.as_view(), name="session-history-feedback"),
    path("sessions/<str:session_id>/cancel", views.cancel_session, name="session-cancel"),
]
