"""A typed client for the amodal agent runtime: `AmodalClient` (sync) and `AsyncAmodalClient` (async).

    from amodal_client import AmodalClient, TextDeltaEvent

    with AmodalClient("https://agent.example.com", token=user_jwt) as client:
        for event in client.chat.stream("What did I spend on groceries?"):
            if isinstance(event, TextDeltaEvent):
                print(event.content, end="")

See clients/python/README.md.
"""

from amodal_client._core import __version__
from amodal_client.async_client import AsyncAmodalClient, AsyncChatStream, AsyncResponseStream
from amodal_client.client import AmodalClient, ChatStream, ResponseStream
from amodal_client.errors import (
    AmodalError,
    APIConnectionError,
    AuthenticationError,
    BudgetExceeded,
    Conflict,
    NotFound,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    RequestTooLarge,
    ServerError,
    ServiceUnavailable,
    ValidationError,
)
from amodal_client.events import (
    ConfirmationRequiredEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    InitEvent,
    TextDeltaEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    UnknownEvent,
    UsageEvent,
    parse_event,
)
from amodal_client.models import (
    CancelResult,
    ChatResult,
    Credential,
    CredentialPage,
    DocumentPage,
    Feedback,
    HistoryMessage,
    HistoryToolCall,
    MemoryEntry,
    MemoryListing,
    MessageUsage,
    ScopeDetails,
    ScopeErased,
    SessionDetail,
    SessionPage,
    SessionSummary,
    StoreDocument,
    StoreInfo,
    StreamError,
    TokenUsage,
    ToolCall,
)

__all__ = [
    "APIConnectionError",
    "AmodalClient",
    "AmodalError",
    "AsyncAmodalClient",
    "AsyncChatStream",
    "AsyncResponseStream",
    "AuthenticationError",
    "BudgetExceeded",
    "CancelResult",
    "ChatResult",
    "ChatStream",
    "ConfirmationRequiredEvent",
    "Conflict",
    "Credential",
    "CredentialPage",
    "DocumentPage",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "Feedback",
    "HistoryMessage",
    "HistoryToolCall",
    "InitEvent",
    "MemoryEntry",
    "MemoryListing",
    "MessageUsage",
    "NotFound",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "RequestTooLarge",
    "ResponseStream",
    "ScopeDetails",
    "ScopeErased",
    "ServerError",
    "ServiceUnavailable",
    "SessionDetail",
    "SessionPage",
    "SessionSummary",
    "StoreDocument",
    "StoreInfo",
    "StreamError",
    "TextDeltaEvent",
    "TokenUsage",
    "ToolCall",
    "ToolCallResultEvent",
    "ToolCallStartEvent",
    "UnknownEvent",
    "UsageEvent",
    "ValidationError",
    "__version__",
    "parse_event",
]
