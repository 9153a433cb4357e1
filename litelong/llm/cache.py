"""An on-disk cache of LLM answers, so that a rerun or a resumed shard asks nothing twice.

Keyed by what determines an answer (model, messages, sampling, answer schema), not by the
endpoint's URL: moving a model to another server keeps the cache. It lives in the artifact store
(`<store>/.llm-cache/`), so pods of a cluster run share it through the same store as their
outputs, and a pod killed mid-shard resumes for free.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel

from ..store import ArtifactStore

CACHE_FOLDER = ".llm-cache"


class CachedAnswer(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def request_key(request: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ResponseCache:
    """One JSON file per answer, written atomically; unreadable entries count as misses."""

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store

    def _path(self, key: str) -> str:
        return self._store.join(CACHE_FOLDER, key[:2], f"{key}.json")

    def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = self._store.fs.cat_file(self._path(key))
            return CachedAnswer.model_validate_json(raw)
        except (FileNotFoundError, ValueError):
            return None

    def put(self, key: str, answer: CachedAnswer) -> None:
        self._store.write_atomic(self._path(key), answer.model_dump_json())


class NoCache:
    def get(self, key: str) -> CachedAnswer | None:
        return None

    def put(self, key: str, answer: CachedAnswer) -> None:
        pass
