"""Any OpenAI-compatible chat endpoint: vLLM, Ollama, llama.cpp server, OpenAI, Azure."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import httpx

from dari.config import LLMSettings
from dari.errors import BackendError, ConfigError
from dari.text import estimate_tokens
from dari.types import GenerationParams


class OpenAICompatGenerator:
    def __init__(self, settings: LLMSettings, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.base_url:
            raise ConfigError(
                "llm.backend = 'openai' needs llm.base_url",
                "set it in dari.toml or DARI_LLM__BASE_URL, e.g. http://localhost:8000/v1",
            )
        self._s = settings
        self.name = settings.model
        key = settings.api_key.get_secret_value()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s, connect=5.0),
            transport=transport,
        )
        self.last_usage: dict[str, int] = {}

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]:
        body = {
            "model": self._s.model,
            "messages": list(messages),
            "stream": True,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "stream_options": {"include_usage": True},
        }
        url = self._s.base_url.rstrip("/") + "/chat/completions"
        self.last_usage = {}
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as r:
                if r.status_code >= 400:
                    r.read()
                    raise BackendError(
                        f"{url} answered {r.status_code}: {r.text[:200]}",
                        _hint_for(r.status_code),
                    )
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("usage"):
                        self.last_usage = dict(event["usage"])
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
        except httpx.ConnectError as exc:
            raise BackendError(
                f"cannot reach the LLM backend at {url}",
                "check llm.base_url and that the server is running",
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"the LLM backend at {url} timed out after {self._s.timeout_s:g}s",
                "raise llm.timeout_s or check the server's load",
            ) from exc
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise BackendError(
                f"the LLM backend at {url} failed: {exc}", "check the server"
            ) from exc


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check llm.api_key (DARI_LLM__API_KEY)"
    if status == 404:
        return "check llm.base_url (it usually ends in /v1) and llm.model"
    return "check the server's logs"
