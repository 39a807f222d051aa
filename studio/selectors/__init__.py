"""Studio's reads across every scope, a module per page: `sessions` (the sessions list), `replay`, `usage`
(Cost & Usage) and `scopes` (the scopes list and what one scope holds).

Operator code: the reads use the explicit `Model.all_scopes` escape (grep for it). Every list is bounded
(keyset pagination or a LIMIT) and every number on the Cost & Usage page is aggregated by the database, so
a page costs a fixed number of queries whatever the number of rows.

Callers use the names re-exported here; to change a module's constant in a test, patch it on its module
(e.g. `studio.selectors.replay.REPLAY_PAGE_MESSAGES`).
"""

from studio.selectors.replay import (
    REPLAY_PAGE_MESSAGES,
    ModelCall,
    Replay,
    Turn,
    get_session,
    normalise_tool_call,
    session_replay,
)
from studio.selectors.scopes import (
    DOCUMENT_PAGE_SIZE,
    DOCUMENT_VERSIONS_SHOWN,
    MEMORY_PAGE_SIZE,
    RECENT_SESSIONS,
    SCOPE_PAGE_SIZE,
    DocumentDetail,
    RowPage,
    ScopeOverview,
    ScopePage,
    document_detail,
    document_page,
    document_stores,
    memory_page,
    scope_overview,
    scope_page,
)
from studio.selectors.sessions import (
    SCOPE_CHIPS,
    SESSION_LIST_FIELDS,
    SESSION_PAGE_SIZE,
    ScopeChip,
    SessionFilters,
    SessionPage,
    scope_chips,
    session_models,
    session_page,
    sessions_matching,
)
from studio.selectors.usage import (
    RANKING_DEFAULT,
    RANKING_MAX,
    TOP_SESSIONS,
    DayPoint,
    daily_usage,
    deployments_by_id,
    scope_ranking,
    top_sessions,
    usage_by,
    usage_rows,
    usage_sums,
    usage_totals,
    with_total_tokens,
)

__all__ = [
    "DOCUMENT_PAGE_SIZE",
    "DOCUMENT_VERSIONS_SHOWN",
    "MEMORY_PAGE_SIZE",
    "RANKING_DEFAULT",
    "RANKING_MAX",
    "RECENT_SESSIONS",
    "REPLAY_PAGE_MESSAGES",
    "SCOPE_CHIPS",
    "SCOPE_PAGE_SIZE",
    "SESSION_LIST_FIELDS",
    "SESSION_PAGE_SIZE",
    "TOP_SESSIONS",
    "DayPoint",
    "DocumentDetail",
    "ModelCall",
    "Replay",
    "RowPage",
    "ScopeChip",
    "ScopeOverview",
    "ScopePage",
    "SessionFilters",
    "SessionPage",
    "Turn",
    "daily_usage",
    "deployments_by_id",
    "document_detail",
    "document_page",
    "document_stores",
    "get_session",
    "memory_page",
    "normalise_tool_call",
    "scope_chips",
    "scope_overview",
    "scope_page",
    "scope_ranking",
    "session_models",
    "session_page",
    "session_replay",
    "sessions_matching",
    "top_sessions",
    "usage_by",
    "usage_rows",
    "usage_sums",
    "usage_totals",
    "with_total_tokens",
]
