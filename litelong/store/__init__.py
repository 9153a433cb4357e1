"""The artifact store: stage outputs committed atomically under
`<store>/<namespace>/<kind>/<name>/<identity>/`."""

from .artifact import (
    MANIFEST,
    Artifact,
    EmptyOutput,
    Failure,
    NotCommitted,
    artifact_folder,
    part_name,
)
from .files import DEFAULT_STORE, StoreFiles, default_store_uri, local_cache_dir
from .manifest import Manifest, PartRecord
from .store import ArtifactStore

__all__ = [
    "DEFAULT_STORE",
    "MANIFEST",
    "Artifact",
    "ArtifactStore",
    "EmptyOutput",
    "Failure",
    "Manifest",
    "NotCommitted",
    "PartRecord",
    "StoreFiles",
    "artifact_folder",
    "default_store_uri",
    "local_cache_dir",
    "part_name",
]
