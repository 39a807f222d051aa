"""The runtime's typed records: what is saved, what the model is given back, how usage adds up."""

from __future__ import annotations

from agents.runtime.providers.base import TokenUsage, ToolUse
from agents.runtime.records import ToolCallRecord, UsageTotals

USE = ToolUse(id="toolu_1", name="request", input={"endpoint": "/a", "api_key": "sk-secret"})


def test_a_finished_call_saves_a_capped_redacted_result_and_gives_the_model_everything():
    long_result = "x" * 60_000
    call = ToolCallRecord.finished(USE, content=long_result, is_error=False, duration_ms=12)
    saved = call.saved()
    assert saved == {
        "tool_id": "toolu_1",
        "tool_name": "request",
        "parameters": {"endpoint": "/a", "api_key": "[REDACTED]"},
        "status": "success",
        "result": "x" * 50_000,
        "duration_ms": 12,
    }
    assert call.result_block() == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": long_result,
        "is_error": False,
    }


def test_a_failed_call_saves_error_not_result():
    saved = ToolCallRecord.finished(USE, content="boom", is_error=True, duration_ms=3).saved()
    assert saved["status"] == "error" and saved["error"] == "boom" and "result" not in saved


def test_a_saved_call_reads_back_as_the_same_record_without_the_model_content():
    call = ToolCallRecord.finished(USE, content="done", is_error=False, duration_ms=5)
    again = ToolCallRecord.from_saved(call.saved())
    assert again.saved() == call.saved()
    assert again.model_content is None and again.result_block()["content"] == "done"


def test_a_cut_off_call_is_an_error_with_no_duration():
    call = ToolCallRecord.cut_off(USE)
    assert (call.status, call.output, call.duration_ms) == ("error", "Cancelled before it finished.", 0)


def test_usage_adds_up_and_one_unpriced_call_makes_the_cost_unknown():
    totals = UsageTotals()
    totals.add(TokenUsage(100, 10, 5, 1), 300)
    totals.add(TokenUsage(50, 5), 200)
    assert totals.as_dict() == {
        "input_tokens": 150,
        "output_tokens": 15,
        "cache_read_tokens": 5,
        "cache_write_tokens": 1,
        "total_tokens": 165,
        "cost_micros": 500,
    }
    totals.add(TokenUsage(1, 1), None)
    totals.add(TokenUsage(1, 1), 100)
    assert totals.cost_micros is None and totals.total_tokens == 169
