"""The artifact store: stage outputs committed atomically under `<store>/<kind>/<name>/<hash>/`."""

from .artifact import MANIFEST, Artifact, NotCommitted, part_name
from .manifest import Manifest, PartRecord
from .store import DEFAULT_STORE, ArtifactStore, default_store_uri, local_cache_dir

__all__ = [
    "DEFAULT_STORE",
    "MANIFEST",
    "Artifact",
    "ArtifactStore",
    "Manifest",
    "NotCommitted",
    "PartRecord",
    "default_store_uri",
    "local_cache_dir",
    "part_name",
]
