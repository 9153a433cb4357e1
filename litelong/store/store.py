"""The artifact store: any fsspec URI; a local folder by default. Finds artifacts by resource
(`output_of`, `input_of`, `latest_committed`); the files themselves are `files.StoreFiles`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..api import KINDS
from ..api.loading import AnyResource
from .artifact import DEFAULT_NAMESPACE, Artifact, NotCommitted, artifact_folder, current_pointer
from .files import StoreFiles
from .manifest import Manifest

#: the four kinds, and the artifacts `litelong eval` commits
_KIND_BY_FOLDER = {kind.lower(): kind for kind in (*KINDS, "Evaluation")}


class ArtifactStore(StoreFiles):
    """Where every stage commits its outputs: `<store>/<namespace>/<kind>/<name>/<identity>/`."""

    def artifact(
        self, kind: str, name: str, identity: str, namespace: str = DEFAULT_NAMESPACE
    ) -> Artifact:
        return Artifact(self, kind, name, identity, namespace)

    def output_of(self, resource: AnyResource) -> Artifact:
        """Where a resource's output lives: its namespace, kind, name and identity."""
        return self.artifact(resource.kind, resource.name, resource.identity(), resource.namespace)

    def input_of(self, resource: AnyResource, kind: str) -> Artifact:
        """The exact committed input of `kind` a resource is made from (its recorded
        identity); its current committed one when the inputs were never resolved."""
        names = [name for ref_kind, name in resource.refs() if ref_kind == kind]
        if not names:
            raise NotCommitted(f"{resource.kind}/{resource.name} has no {kind} input")
        inputs = resource.inputs()
        identity = (inputs or {}).get(f"{kind}/{names[0]}")
        if identity is None:
            return self.latest_committed(kind, names[0], resource.namespace)
        return self.artifact(kind, names[0], identity, resource.namespace)

    def artifacts(self) -> Iterator[Artifact]:
        """Every artifact folder in the store, committed or not."""
        for namespace_dir in self._children(self.root):
            namespace = Path(namespace_dir).name
            if namespace in _KIND_BY_FOLDER and self._is_legacy(namespace_dir):
                continue
            for kind_dir in self._children(namespace_dir):
                kind = _KIND_BY_FOLDER.get(Path(kind_dir).name)
                if kind is None:
                    continue
                for name_dir in self._children(kind_dir):
                    for identity_dir in self._children(name_dir):
                        yield self.artifact(
                            kind, Path(name_dir).name, Path(identity_dir).name, namespace
                        )

    def legacy_folders(self) -> list[str]:
        """Kind folders of the layout before namespaces (`<store>/<kind>/<name>/<hash>/`).

        They are not read; `mkdir -p default && mv bm25index topicdebate synthesisrun
        trainingjob default/` in the store moves them to namespace `default`.
        """
        return [
            Path(path).name
            for path in self._children(self.root)
            if Path(path).name in _KIND_BY_FOLDER and self._is_legacy(path)
        ]

    def _is_legacy(self, folder: str) -> bool:
        """A kind folder at the top: its grandchildren hold a manifest or parts directly."""
        for name_dir in self._children(folder):
            for hash_dir in self._children(name_dir):
                entries = [Path(e).name for e in self.fs.ls(hash_dir, detail=False)]
                if any(e == "_manifest.json" or e.startswith("part-") for e in entries):
                    return True
        return False

    def latest_committed(
        self,
        kind: str,
        name: str,
        namespace: str = DEFAULT_NAMESPACE,
        accept: Callable[[Manifest], bool] | None = None,
    ) -> Artifact:
        """The current committed output of a resource: the one its `_current` pointer names
        (the last one a run committed or found committed), else, in stores written before
        the pointer or when it names a discarded output, the newest by creation time.

        With `accept`, only outputs whose manifest it takes count.
        """
        current = self._current(kind, name, namespace)
        if current is not None:
            manifest = current.committed_manifest()
            if manifest is not None and (accept is None or accept(manifest)):
                return current
        folder = self.join(artifact_folder(namespace, kind, name, "")).rstrip("/")
        found = []
        for hash_dir in self._children(folder):
            artifact = self.artifact(kind, name, Path(hash_dir).name, namespace)
            manifest = artifact.committed_manifest()
            if manifest is not None and (accept is None or accept(manifest)):
                found.append((manifest.created_at, artifact))
        if not found:
            where = f"in namespace {namespace} of {self.uri}"
            if accept is not None:
                raise NotCommitted(f"{kind}/{name} of this spec is not committed {where}")
            raise NotCommitted(f"no committed {kind}/{name} {where}")
        return max(found, key=lambda pair: pair[0])[1]

    def _current(self, kind: str, name: str, namespace: str) -> Artifact | None:
        """The output the resource's `_current` pointer names, if it has one."""
        try:
            raw = self.fs.cat_file(self.join(current_pointer(namespace, kind, name)))
        except FileNotFoundError:
            return None
        identity = raw.decode().strip()
        if not identity or "/" in identity or identity.startswith("."):
            return None
        return self.artifact(kind, name, identity, namespace)

    def _children(self, path: str) -> list[str]:
        try:
            entries: list[dict[str, Any]] = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            e["name"]
            for e in entries
            if e["type"] == "directory" and not Path(e["name"]).name.startswith(".")
        )
