"""Every error dari raises on purpose.

DariError                 message + hint; the CLI and server render it in one place each
├── ConfigError           bad settings, unknown model name, missing optional extra
├── IngestError           a file that could not be loaded (one per file; the batch goes on)
├── StoreError            the on-disk store (SQLite, tantivy, vectors) failed or is inconsistent
│   └── UnknownCollection
├── BackendError          an embedder or LLM backend failed or is unreachable
│   └── ModelNotFound
├── InputError            a request that cannot be served as given (empty question…)
│   ├── UnknownTrace      feedback for a trace id that was never recorded
│   ├── NotFound          a named thing that is not there (a document, a prompt version…)
│   ├── Conflict          a name already taken (a collection that exists)
│   └── TooLarge          an upload or request body over the configured limit
└── AccessError           the server refuses the caller: no or bad key (401), not allowed (403)
    └── RateLimited       too many requests for this key (429, with Retry-After)

Each class carries the HTTP status the server answers with (`http_status`) and the CLI's exit code.
"""

from __future__ import annotations


class DariError(Exception):
    """Root of dari's errors: a one-line message naming the thing, and a hint saying what to do."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(DariError):
    exit_code = 78  # EX_CONFIG
    http_status = 500


class MissingExtra(ConfigError):
    """An optional dependency is not installed; the hint is the exact install line."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the optional package '{package}' is not installed",
            f"pip install 'dari[{extra}]'",
        )


class IngestError(DariError):
    """A file that could not be loaded. `reason` is the message without the file's name, for
    reports that show the file in a column of its own."""

    exit_code = 65  # EX_DATAERR
    http_status = 422

    def __init__(self, message: str, hint: str = "", reason: str = "") -> None:
        super().__init__(message, hint)
        self.reason = reason or message


class StoreError(DariError):
    exit_code = 74  # EX_IOERR


class UnknownCollection(StoreError):
    exit_code = 66  # EX_NOINPUT
    http_status = 404

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none yet"
        super().__init__(
            f"unknown collection '{name}' (existing: {listing})",
            f"ingest into it first: dari ingest PATH --collection {name}",
        )
        self.name = name


class BackendError(DariError):
    exit_code = 69  # EX_UNAVAILABLE
    http_status = 503
    retry_after = 5.0  # seconds a client should wait before trying again (the Retry-After)


class ModelNotFound(BackendError):
    pass


class InputError(DariError):
    exit_code = 64  # EX_USAGE
    http_status = 400


class UnknownTrace(InputError):
    """Feedback names a trace id the store does not hold (the CLI's and server's 404)."""

    exit_code = 66  # EX_NOINPUT
    http_status = 404

    def __init__(self, trace_id: str) -> None:
        super().__init__(
            f"unknown trace id '{trace_id}'",
            "trace ids are printed by dari ask --json (its trace_id field)",
        )
        self.trace_id = trace_id


class NotFound(InputError):
    exit_code = 66  # EX_NOINPUT
    http_status = 404


class Conflict(InputError):
    http_status = 409


class TooLarge(InputError):
    http_status = 413


class AccessError(DariError):
    """The caller may not do this: `http_status` 401 (no valid key) or 403 (not allowed)."""

    exit_code = 77  # EX_NOPERM
    http_status = 401

    def __init__(self, message: str, hint: str = "", status: int = 401) -> None:
        super().__init__(message, hint)
        self.http_status = status


class RateLimited(AccessError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"too many requests: try again in {retry_after:.0f} s",
            "slow down, or ask an administrator for a higher limit (server.rate_per_minute)",
            429,
        )
        self.retry_after = retry_after
