"""What comes back to the model (SPEC §4): `{status, data}`, API errors as results, long bodies cut with
head and tail kept, timeouts and unreachable hosts as readable tool errors."""

from __future__ import annotations

import json
import socket

import pytest

from connections.outbound import MAX_BODY_CHARS


@pytest.fixture
def agent(make_agent, api):
    return make_agent({"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 5}})


def get(request_tool, agent, endpoint="/items", **extra):
    return request_tool(agent, {"connection": "app-api", "method": "GET", "endpoint": endpoint, **extra})


def test_a_json_answer_comes_back_as_status_and_data(agent, api, request_tool):
    api.route("/items", body={"items": [{"id": 1, "name": "café"}], "total": 1})
    result = get(request_tool, agent)
    assert not result.is_error
    assert json.loads(result.content) == {"status": 200, "data": {"items": [{"id": 1, "name": "café"}], "total": 1}}


def test_a_text_answer_comes_back_as_a_string(agent, api, request_tool):
    api.route("/hello", body="plain text, not JSON")
    result = get(request_tool, agent, "/hello")
    assert json.loads(result.content) == {"status": 200, "data": "plain text, not JSON"}


def test_invalid_json_is_returned_as_text(agent, api, request_tool):
    api.route("/broken", body="{not json", headers={"Content-Type": "application/json"})
    result = get(request_tool, agent, "/broken")
    assert not result.is_error
    assert json.loads(result.content) == {"status": 200, "data": "{not json"}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 502, 503])
def test_api_errors_are_results_not_crashes(agent, api, request_tool, status):
    """The model reads the answer (`{status, data}`, not an exception's text), and the call is marked
    failed, so no one sees a 404 page as a success."""
    api.route("/items", status=status, body={"error": f"status {status}"})
    result = get(request_tool, agent)
    assert result.is_error
    assert json.loads(result.content) == {"status": status, "data": {"error": f"status {status}"}}


def test_an_empty_204_answer(agent, api, request_tool):
    api.route("/items/1", status=204, body=b"")
    result = request_tool(agent, {"connection": "app-api", "method": "DELETE", "endpoint": "/items/1"})
    assert not result.is_error, result.content
    assert json.loads(result.content) == {"status": 204, "data": ""}


def test_long_bodies_are_cut_keeping_head_and_tail(agent, api, request_tool):
    blob = "HEAD-MARKER " + "".join(f"row {i:06d}; " for i in range(8_000)) + " TAIL-MARKER"
    assert len(blob) > 4 * MAX_BODY_CHARS
    api.route("/big", body={"blob": blob})
    result = get(request_tool, agent, "/big")
    assert not result.is_error
    assert result.content.startswith('{"status": 200, "data": {"blob": "HEAD-MARKER row 000000;')
    assert result.content.endswith('row 007999;  TAIL-MARKER"}}')
    assert "characters cut" in result.content
    assert len(result.content) < MAX_BODY_CHARS + 100
    assert "row 004000;" not in result.content  # the middle is gone


def test_a_body_at_the_limit_is_not_cut(agent, api, request_tool):
    envelope = len(json.dumps({"status": 200, "data": ""}))
    api.route("/exact", body="y" * (MAX_BODY_CHARS - envelope))
    result = get(request_tool, agent, "/exact")
    assert len(result.content) == MAX_BODY_CHARS
    assert "cut" not in result.content


def test_a_slow_api_times_out_as_a_tool_error(make_agent, api, request_tool):
    agent = make_agent({"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 0.3}})
    api.route("/slow", delay=5.0, body={"late": True})
    result = get(request_tool, agent, "/slow")
    assert result.is_error
    assert "app-api" in result.content
    assert "did not answer within 0.3 seconds" in result.content
    assert len(api.received) == 1


def test_an_unreachable_port_is_a_readable_error(make_agent, request_tool):
    with socket.socket() as sock:  # a port that was free a moment ago and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = make_agent({"app-api": {"baseUrl": f"http://127.0.0.1:{port}", "timeoutSeconds": 3}})
    result = get(request_tool, agent)
    assert result.is_error
    assert result.content == "Connection app-api could not be reached (ConnectionError)."


def test_an_unknown_connection_lists_the_known_ones(agent, api, request_tool):
    result = request_tool(agent, {"connection": "other", "method": "GET", "endpoint": "/x"})
    assert result.is_error
    assert "app-api" in result.content
    assert api.received == []


def test_params_must_be_an_object(agent, api, request_tool):
    result = get(request_tool, agent, params=["a", "b"])
    assert result.is_error
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_through_the_chat_api_results_and_errors_reach_the_model(agent, api, chat, jwt_header):
    api.route("/missing", status=404, body={"detail": "no such account"})
    blob = "HEAD-MARKER " + "z" * 60_000 + " TAIL-MARKER"
    api.route("/big", body=blob)
    for endpoint in ["/missing", "/big"]:
        arguments = {"connection": "app-api", "method": "GET", "endpoint": endpoint}
        response = chat.stream({"message": "/tool request " + json.dumps(arguments)}, jwt_header("tenant-a"))
        assert response.status == 200
        (result,) = response.of_type("tool_call_result")
        assert response.of_type("done")[0]["reason"] == "model_stop"
        if endpoint == "/missing":
            assert result["status"] == "error"  # shown as a failure, its answer kept whole
            assert json.loads(result["error"]) == {"status": 404, "data": {"detail": "no such account"}}
            assert "no such account" in "".join(e["content"] for e in response.of_type("text_delta"))
        else:
            assert result["status"] == "success"
            assert "HEAD-MARKER" in result["result"] and "TAIL-MARKER" in result["result"]
            assert len(result["result"]) < MAX_BODY_CHARS + 100


@pytest.mark.django_db(transaction=True)
def test_the_agent_tool_timeout_also_bounds_a_call(make_agent, api, chat, jwt_header):
    make_agent(
        {"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 30}}, amodal={"agent": {"toolTimeoutSeconds": 0.3}}
    )
    api.route("/slow", delay=2.0)
    arguments = {"connection": "app-api", "method": "GET", "endpoint": "/slow"}
    response = chat.stream({"message": "/tool request " + json.dumps(arguments)}, jwt_header("tenant-a"))
    (result,) = response.of_type("tool_call_result")
    assert result["status"] == "error"
    assert "did not finish within 0.3 seconds" in result["error"]
    assert response.of_type("done")[0]["reason"] == "model_stop"


def test_a_stalled_body_times_out_as_a_tool_error(make_agent, api, request_tool):
    agent = make_agent({"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 0.3}})
    api.route("/stall", body={"blob": "x" * 1000}, trickle=(2, 5.0))  # headers and half the body, then silence
    result = get(request_tool, agent, "/stall")
    assert result.is_error
    assert "did not answer within 0.3 seconds" in result.content


def test_a_trickling_body_is_bounded_by_the_timeout_in_total(make_agent, api, request_tool):
    """Every piece comes within the timeout, but the whole answer does not."""
    agent = make_agent({"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 0.5}})
    api.route("/trickle", body={"blob": "x" * 4000}, trickle=(40, 0.1))
    result = get(request_tool, agent, "/trickle")
    assert result.is_error
    assert "did not answer within 0.5 seconds" in result.content


def test_a_huge_body_is_read_only_up_to_a_cap(make_agent, api, request_tool):
    from connections.outbound import MAX_RESPONSE_BYTES

    agent = make_agent({"app-api": {"baseUrl": api.base_url, "timeoutSeconds": 10}})
    api.route("/huge", body="HEAD-MARKER" + "h" * (MAX_RESPONSE_BYTES + 1_000_000) + "TAIL-NEVER-READ")
    result = get(request_tool, agent, "/huge")
    assert not result.is_error, result.content
    assert result.content.startswith('{"status": 200, "data": "HEAD-MARKER')
    assert "TAIL-NEVER-READ" not in result.content
    assert "cut" in result.content
    assert len(result.content) < MAX_BODY_CHARS + 100
