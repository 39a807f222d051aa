"""The admin site: its names (Studio lives inside it, see templates/admin/ for the Studio links) and the
operators' admin for the agent runtime: sessions and end users' feedback (read-only, replayed in Studio),
deploys, model prices (the one editable table here: an override of agents.pricing.PRICE_TABLE). Memory
entries have theirs in memory/admin.py.

The runtime's admin lives here rather than in `agents`: it is operator UI and formats money like Studio.
Scoped models are listed through their explicit `all_scopes` manager: admin is operator code with no
active scope.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from agents.models import Deployment, Feedback, FeedbackRating, ModelPrice, Session
from agents.pricing import PRICE_TABLE, price_from_table
from core.admin import ReadOnlyAdmin
from scoping.models import display_scope
from studio.formatting import format_cost, format_usd
from studio.models import VIEW_STUDIO

admin.site.site_header = "amodal runtime"
admin.site.site_title = "amodal"
admin.site.index_title = "Operations"


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = [
        "shown_title",
        "shown_scope",
        "model",
        "shown_status",
        "message_count",
        "cost",
        "updated_at",
        "replay",
    ]
    list_filter = ["status", "provider", "model"]
    search_fields = ["=id", "scope", "title"]
    date_hierarchy = "updated_at"
    ordering = ["-updated_at"]
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over every session on each page
    fields = (
        "id",
        "scope",
        "title",
        "tags",
        "status",
        "deploy_id",
        "provider",
        "model",
        "user_sub",
        "created_at",
        "updated_at",
        "message_count",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_micros",
        "unpriced_calls",
        "replay",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return Session.all_scopes.all()  # operator view across scopes

    # The replay link only for those who may open it (the others would land on Studio's 403 page).
    def get_list_display(self, request):
        return without_replay(super().get_list_display(request), request)

    def get_fields(self, request, obj=None):
        return without_replay(super().get_fields(request, obj), request)

    @admin.display(description="title", ordering="title")
    def shown_title(self, obj: Session) -> str:
        return obj.title or "(untitled)"

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: Session) -> str:
        return display_scope(obj.scope)

    @admin.display(description="status", ordering="status")
    def shown_status(self, obj: Session) -> str:
        return obj.shown_status

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: Session) -> str:
        return format_cost(obj.cost_micros, obj.unpriced_calls) if obj.message_count else "—"

    @admin.display(description="replay")
    def replay(self, obj: Session) -> str:
        return format_html('<a href="{}">Replay in Studio</a>', reverse("studio:replay", args=[obj.pk]))


def without_replay(names, request) -> list[str]:
    return list(names) if request.user.has_perm(VIEW_STUDIO) else [name for name in names if name != "replay"]


COMMENT_PREVIEW_CHARS = 120


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    """Every end user's rating across scopes, newest first: what was rated (the session or one answer), the
    comment, who, which deploy had answered. Ratings are the end users' own: operators read them here and in
    the replay, never edit them."""

    list_display = ["shown_rating", "shown_comment", "shown_scope", "rated", "updated_at"]
    list_filter = ["rating", "deploy_id"]
    search_fields = ["scope", "user_sub", "comment"]
    date_hierarchy = "updated_at"
    ordering = ["-updated_at", "-pk"]
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over every rating on each page
    fields = ("rating", "comment", "rated", "scope", "user_sub", "deploy_id", "created_at", "updated_at", "replay")
    readonly_fields = fields

    def get_queryset(self, request):
        return Feedback.all_scopes.all()  # operator view across scopes

    def get_list_display(self, request):
        return without_replay([*super().get_list_display(request), "replay"], request)

    def get_fields(self, request, obj=None):
        return without_replay(super().get_fields(request, obj), request)

    @admin.display(description="rating", ordering="rating")
    def shown_rating(self, obj: Feedback) -> str:
        return "positive" if obj.rating == FeedbackRating.POSITIVE else "negative"

    @admin.display(description="comment")
    def shown_comment(self, obj: Feedback) -> str:
        if len(obj.comment) <= COMMENT_PREVIEW_CHARS:
            return obj.comment or "—"
        return obj.comment[: COMMENT_PREVIEW_CHARS - 1] + "…"

    @admin.display(description="rated")
    def rated(self, obj: Feedback) -> str:
        return "the session" if obj.message_id is None else "an answer"

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: Feedback) -> str:
        return display_scope(obj.scope)

    @admin.display(description="replay")
    def replay(self, obj: Feedback) -> str:
        return format_html('<a href="{}">Replay</a>', reverse("studio:replay", args=[obj.session_id]))


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["deploy_id", "agent_name", "agent_version", "first_seen_at"]
    search_fields = ["deploy_id", "agent_name", "agent_version"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices in micro-dollars per million tokens (3 USD = 3000000). A row here wins over the built-in
    table for that model id (exact match); empty cache prices take 10% / 125% of the input price."""

    list_display = [
        "model",
        "input_price",
        "output_price",
        "cache_read_price",
        "cache_write_price",
        "built_in",
        "updated_at",
    ]
    search_fields = ["model"]
    readonly_fields = ["built_in", "updated_at"]
    fields = [
        "model",
        "input_micros_per_mtok",
        "output_micros_per_mtok",
        "cache_read_micros_per_mtok",
        "cache_write_micros_per_mtok",
        "built_in",
        "updated_at",
    ]

    @admin.display(description="input / Mtok", ordering="input_micros_per_mtok")
    def input_price(self, obj: ModelPrice) -> str:
        return format_usd(obj.input_micros_per_mtok)

    @admin.display(description="output / Mtok", ordering="output_micros_per_mtok")
    def output_price(self, obj: ModelPrice) -> str:
        return format_usd(obj.output_micros_per_mtok)

    @admin.display(description="cache read / Mtok")
    def cache_read_price(self, obj: ModelPrice) -> str:
        if obj.cache_read_micros_per_mtok is None:
            return f"{format_usd(obj.input_micros_per_mtok // 10)} (10% of input)"
        return format_usd(obj.cache_read_micros_per_mtok)

    @admin.display(description="cache write / Mtok")
    def cache_write_price(self, obj: ModelPrice) -> str:
        if obj.cache_write_micros_per_mtok is None:
            return f"{format_usd(obj.input_micros_per_mtok * 5 // 4)} (125% of input)"
        return format_usd(obj.cache_write_micros_per_mtok)

    @admin.display(description="built-in price")
    def built_in(self, obj: ModelPrice) -> str:
        price = price_from_table(obj.model) if obj and obj.model else None
        if price is None:
            families = ", ".join(sorted(PRICE_TABLE))
            return f"none (the built-in table has: {families})"
        return f"{format_usd(price.input)} in / {format_usd(price.output)} out per Mtok"
