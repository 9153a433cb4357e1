"""API keys: read from the environment or a mounted Secret file, never from the manifest.

In a cluster the operator mounts each referenced Secret key as a file under
`/var/run/secrets/litelong/<secret>/<key>`; on a laptop the same key comes from the environment
variable `LITELONG_SECRET_<SECRET>_<KEY>` (upper case, other characters as `_`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..api.v1alpha1.meta import SecretKeyRef

SECRETS_DIR_ENV = "LITELONG_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/var/run/secrets/litelong"
NO_KEY = "no-key"  # the OpenAI client insists on a key; local servers ignore it


class MissingSecret(ValueError):
    """A referenced Secret key is neither in the environment nor mounted."""


def resolve_api_key(ref: SecretKeyRef | None) -> str:
    """The key a SecretKeyRef points at; `NO_KEY` when the endpoint needs none."""
    if ref is None:
        return NO_KEY
    variable = ref.env_var()
    if value := os.environ.get(variable, "").strip():
        return value
    path = Path(os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR)) / ref.name / ref.key
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError:
        value = ""
    if not value:
        raise MissingSecret(
            f"API key of secret {ref.name!r} key {ref.key!r} not found: set ${variable} or "
            f"mount the key at {path}"
        )
    return value
