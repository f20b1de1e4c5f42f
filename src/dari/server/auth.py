"""Who is calling: the API key of a request (Authorization: Bearer, or X-API-Key), its rate limit,
and what it may touch."""

from __future__ import annotations

from fastapi import Request

from dari.app import Dari
from dari.errors import AccessError, UnknownCollection
from dari.server.keys import ApiKey, Role

LOCAL = ApiKey("local", "local (server.auth = false)", Role.ADMIN, ("*",), None, 0.0)


def dari_of(request: Request) -> Dari:
    """The app's one `Dari`, shared by every request."""
    dari: Dari = request.app.state.dari
    return dari


def caller(request: Request) -> ApiKey:
    """The request's key, verified and rate-limited; 401 without a valid one."""
    state = request.app.state
    if not state.settings.server.auth:
        key = LOCAL
    else:
        token = _token(request)
        if not token:
            raise AccessError(
                "no API key", "send 'Authorization: Bearer <key>'; create one: dari keys create"
            )
        found = state.keys.verify(token)
        if found is None:
            raise AccessError("the API key is unknown or revoked", "ask an administrator for one")
        key = found
    state.limits.take(key.id)
    request.state.key = key
    return key


def admin(request: Request) -> ApiKey:
    key = caller(request)
    if not key.admin:
        raise AccessError("this needs an admin key", "dari keys create --role admin", 403)
    return key


def check_collection(key: ApiKey, collection: str, known: list[str]) -> None:
    """403 for a collection the key may not use; 404 (with only the key's own collections
    listed) for one that does not exist."""
    if not key.may_use(collection):
        raise AccessError(
            f"this key may not use collection '{collection}'",
            "ask an administrator for a key with that collection",
            403,
        )
    if collection not in known:
        raise UnknownCollection(collection, [c for c in known if key.may_use(c)])


def _token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()
