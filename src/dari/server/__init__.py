"""`dari serve`: the pipeline as an HTTP service (OpenAI-compatible and native API), with API keys,
ACL, rate limits and metrics. Needs the `server` extra."""
