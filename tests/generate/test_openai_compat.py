"""The OpenAI-compatible backend against httpx.MockTransport: SSE parsing, usage, errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from dari.config import LLMSettings
from dari.errors import BackendError, ConfigError
from dari.generate.openai_compat import OpenAICompatGenerator
from dari.types import GenerationParams

pytestmark = pytest.mark.usefixtures("no_network")

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "연차는?"}]
PARAMS = GenerationParams(temperature=0.2, top_p=0.8, max_tokens=64, seed=3)


def sse(*events: object, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def delta(text: str | None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text} if text is not None else {}}]}


def generator(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> OpenAICompatGenerator:
    base = {"base_url": "http://llm.test/v1/", "model": "qwen", "timeout_s": 5.0}
    base.update(settings)
    return OpenAICompatGenerator(LLMSettings(**base), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def answer(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    return handler


# --- streaming ------------------------------------------------------------------------------


def test_sse_stream_yields_pieces_and_records_usage() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    body = sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        delta("연차는 "),
        delta("15일입니다"),
        delta(""),
        delta(" [1]."),
        {"choices": [], "usage": usage},
    )
    gen = generator(answer(body))
    assert list(gen.stream(MESSAGES, PARAMS)) == ["연차는 ", "15일입니다", " [1]."]
    assert gen.last_usage == usage


def test_sse_ignores_comments_and_other_fields_and_stops_at_done() -> None:
    body = (
        b": keep-alive\n\n"
        b"event: message\n"
        + sse(delta("one"))
        + b"id: 7\n\n"
        + sse(delta("after done"), done=False)
    )
    gen = generator(answer(body))
    assert list(gen.stream(MESSAGES, PARAMS)) == ["one"]
    assert gen.last_usage == {}


def test_sse_without_done_ends_with_the_body() -> None:
    gen = generator(answer(sse(delta("a"), delta("b"), done=False)))
    assert list(gen.stream(MESSAGES, PARAMS)) == ["a", "b"]


def test_data_without_space_and_null_choices() -> None:
    body = b'data:{"choices": null}\n\ndata:{"choices": [{"delta": null}]}\n\n' + sse(delta("x"))
    assert list(generator(answer(body)).stream(MESSAGES, PARAMS)) == ["x"]


def test_usage_is_reset_for_each_request() -> None:
    bodies = [sse(delta("a"), {"choices": [], "usage": {"prompt_tokens": 1}}), sse(delta("b"))]
    gen = generator(lambda request: httpx.Response(200, content=bodies.pop(0)))
    list(gen.stream(MESSAGES, PARAMS))
    assert gen.last_usage == {"prompt_tokens": 1}
    list(gen.stream(MESSAGES, PARAMS))
    assert gen.last_usage == {}


def test_request_carries_model_messages_params_and_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse(delta("ok")))

    gen = generator(handler, api_key="sk-test")
    assert gen.name == "qwen"
    assert list(gen.stream(MESSAGES, PARAMS)) == ["ok"]
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "qwen"
    assert body["messages"] == MESSAGES
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.2,
        0.8,
        64,
        3,
    )


def test_no_authorization_header_without_a_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse())

    assert list(generator(handler).stream(MESSAGES, PARAMS)) == []
    assert "authorization" not in seen[0].headers


def test_count_tokens_is_an_estimate() -> None:
    gen = generator(answer(sse()))
    assert gen.count_tokens("one two three") == 3
    assert gen.count_tokens("") == 0


# --- errors ---------------------------------------------------------------------------------


def error_for(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> BackendError:
    with pytest.raises(BackendError) as info:
        list(generator(handler, **settings).stream(MESSAGES, PARAMS))
    return info.value


def test_401_hint_names_the_api_key() -> None:
    error = error_for(answer(b'{"error": "invalid api key"}', status=401))
    assert "401" in error.message
    assert "invalid api key" in error.message
    assert "llm.test/v1" in error.message and "chat/completions" in error.message
    assert "llm.api_key" in error.hint
    assert "DARI_LLM__API_KEY" in error.hint


def test_403_hint_names_the_api_key() -> None:
    assert "llm.api_key" in error_for(answer(b"forbidden", status=403)).hint


def test_404_hint_names_the_base_url() -> None:
    error = error_for(answer(b"not found", status=404))
    assert "404" in error.message
    assert "llm.base_url" in error.hint
    assert "/v1" in error.hint


def test_500_hint_points_to_the_server_logs() -> None:
    error = error_for(answer(b"x" * 1000, status=500))
    assert "500" in error.message
    assert len(error.message) < 300  # the body is cut
    assert "logs" in error.hint


def test_connect_error_says_cannot_reach() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = error_for(refuse)
    assert error.message.startswith("cannot reach the LLM backend at http://llm.test/v1")
    assert "llm.base_url" in error.hint
    assert isinstance(error.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("base_url", ["http://llm.test/v1", "http://llm.test/v1/"])
def test_error_names_the_url_requested(base_url: str) -> None:
    error = error_for(answer(b"nope", status=404), base_url=base_url)
    assert "http://llm.test/v1/chat/completions answered 404" in error.message


def test_timeout_names_the_limit() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = error_for(slow, timeout_s=2.5)
    assert "timed out after 2.5s" in error.message
    assert "llm.timeout_s" in error.hint


def test_malformed_event_is_backend_error() -> None:
    error = error_for(answer(b"data: {not json\n\n"))
    assert "failed" in error.message
    assert error.hint


def test_missing_base_url_is_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAICompatGenerator(LLMSettings(backend="openai"))
    assert "llm.base_url" in info.value.message
    assert "DARI_LLM__BASE_URL" in info.value.hint
