"""OpenAI-compatible endpoints: a collection is a "model". Stock OpenAI clients work unchanged;
the citations, trace id and guard results ride in an extension field `dari` (non-streamed: on
the response; streamed: on the last chunk before [DONE])."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from dari.errors import InputError
from dari.server.answering import Emit, in_thread, record
from dari.server.auth import caller, check_collection, dari_of
from dari.server.keys import ApiKey
from dari.server.schemas import answer_body
from dari.types import Answer

router = APIRouter(prefix="/v1", tags=["openai"])
Caller = Annotated[ApiKey, Depends(caller)]
MAX_EMBED_INPUTS = 256


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens…: accepted, not used
    model: str = Field(..., description="The collection to answer from.")
    messages: list[Message] = Field(..., min_length=1, max_length=50)
    stream: bool = False
    user: str | None = None


class EmbeddingsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str]
    model: str = ""


@router.get("/models")
def models(request: Request, key: Caller) -> dict[str, Any]:
    """The collections this key may ask, as models."""
    names = [n for n in dari_of(request).store.collection_names() if key.may_use(n)]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "dari"} for n in names],
    }


@router.post("/chat/completions", response_model=None)
def chat(body: ChatIn, request: Request, key: Caller) -> dict[str, Any] | StreamingResponse:
    """A grounded answer to the last user message, earlier turns as the conversation."""
    dari = dari_of(request)
    check_collection(key, body.model, dari.store.collection_names())
    question, history = _conversation(body.messages)
    created = int(time.time())

    def ask(on_token: Any = None) -> Answer:
        started = time.time_ns()
        answer: Answer = dari.ask(
            question,
            body.model,
            acl=key.acl,
            on_token=on_token,
            history=history,
            prompt_key=body.user or key.id,
            caller=key.id,
        )
        record(request, answer, started)
        return answer

    if body.stream:
        return StreamingResponse(_chunks(ask, body.model, created), media_type="text/event-stream")
    answer = ask()
    usage = answer.trace.prompt_tokens, answer.trace.completion_tokens
    return {
        "id": f"chatcmpl-{answer.trace.id}",
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
        "dari": answer_body(answer),
    }


def _conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the (user, assistant) turns before it."""
    texts = [(m.role, _text(m.content)) for m in messages if m.role in ("user", "assistant")]
    if not texts or texts[-1][0] != "user" or not texts[-1][1].strip():
        raise InputError(
            "the last message must be a non-empty user message", "end messages with the question"
        )
    history = [
        (texts[i][1], texts[i + 1][1])
        for i in range(len(texts) - 1)
        if texts[i][0] == "user" and texts[i + 1][0] == "assistant"
    ]
    return texts[-1][1], history


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


def _chunks(ask: Callable[[Emit], Answer], model: str, created: int) -> Iterator[str]:
    """OpenAI chat.completion.chunk events from the pipeline's tokens, run in a thread."""
    cid = f"chatcmpl-{created}"
    first = True
    for kind, data in in_thread(ask):
        if kind == "error":
            yield f"data: {json.dumps({'error': data}, ensure_ascii=False)}\n\n"
            return
        if kind == "token":
            delta = {"role": "assistant", "content": data} if first else {"content": data}
            first = False
            yield _chunk(cid, created, model, delta, None)
            continue
        answer: Answer = data
        if first:  # nothing was streamed (e.g. a cached answer given whole)
            yield _chunk(cid, created, model, {"role": "assistant", "content": answer.text}, None)
        yield _chunk(cid, created, model, {}, "stop", answer_body(answer))
        yield "data: [DONE]\n\n"
        return


def _chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None,
    extension: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extension is not None:
        body["dari"] = extension
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


@router.post("/embeddings")
def embeddings(body: EmbeddingsIn, request: Request, key: Caller) -> dict[str, Any]:
    """Passage embeddings from dari's embedder (the one its collections are indexed with)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > MAX_EMBED_INPUTS or any(not t for t in texts):
        raise InputError(
            f"input must be 1 to {MAX_EMBED_INPUTS} non-empty texts", "split the request"
        )
    dari = dari_of(request)
    vecs = dari.embedder.embed_passages(texts)
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
            for i, v in enumerate(vecs)
        ],
        "model": dari.embedder.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
