"""Talking to LLMs: OpenAI-compatible endpoints, the embedded local server, keys and a cache."""

from .cache import ResponseCache
from .client import Answer, ChatClient, EndpointError, EndpointPool
from .keys import MissingSecret, resolve_api_key
from .local import LOCAL, LOCAL_MODEL, LocalModelMissing, LocalServer, smollm2_gguf

__all__ = [
    "LOCAL",
    "LOCAL_MODEL",
    "Answer",
    "ChatClient",
    "EndpointError",
    "EndpointPool",
    "LocalModelMissing",
    "LocalServer",
    "MissingSecret",
    "ResponseCache",
    "resolve_api_key",
    "smollm2_gguf",
]
