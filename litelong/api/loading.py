"""Loading manifests: multi-document YAML → typed resources, or every problem by its field path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .v1alpha1 import API_VERSION, KINDS, Resource

AnyResource = Resource[Any, Any]


@dataclass(frozen=True)
class FieldError:
    """One invalid field: `path` as a user writes it (spec.corpus[0].format)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidManifest(ValueError):
    """A manifest that cannot be used, with every problem found (not just the first)."""

    def __init__(self, source: str, errors: list[FieldError]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {error}" for error in errors)
        super().__init__(f"{source}: invalid\n{lines}")


def load_file(path: str | Path) -> list[AnyResource]:
    """Every resource in a YAML file, in file order; raises InvalidManifest."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidManifest(str(path), [FieldError("", f"cannot read: {exc}")]) from exc
    return load_text(text, source=str(path))


def load_text(text: str, source: str = "<string>") -> list[AnyResource]:
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise InvalidManifest(source, [FieldError("", f"invalid YAML: {exc}")]) from exc
    if not documents:
        raise InvalidManifest(source, [FieldError("", "no resources in the file")])
    resources, errors = [], []
    for number, document in enumerate(documents, start=1):
        label = f"document {number}" if len(documents) > 1 else ""
        try:
            resources.append(parse(document))
        except InvalidManifest as exc:
            errors += [_prefixed(label, exc.errors, document)]
    if errors:
        raise InvalidManifest(source, [e for group in errors for e in group])
    _check_unique(resources, source)
    return resources


def parse(document: Any) -> AnyResource:
    """One resource from a decoded YAML/JSON object; raises InvalidManifest."""
    if not isinstance(document, dict):
        raise InvalidManifest("", [FieldError("", "a resource must be a mapping")])
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION:
        raise InvalidManifest("", [FieldError("apiVersion", f"must be {API_VERSION}")])
    if kind not in KINDS:
        known = ", ".join(KINDS)
        raise InvalidManifest("", [FieldError("kind", f"unknown kind {kind!r}; one of {known}")])
    try:
        return KINDS[kind].model_validate(document)
    except ValidationError as exc:
        raise InvalidManifest("", field_errors(exc)) from exc


def field_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(_path(error["loc"]), _message(error)) for error in exc.errors()]


def _path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "literal[")):  # pydantic's internal steps
            continue
        else:
            path += f".{part}" if path else part
    return path


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and _path(error["loc"]).endswith("name"):
        return "must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63)"
    message: str = error["msg"]
    message = message.removeprefix("Value error, ")
    return message[0].lower() + message[1:] if message else kind


def _prefixed(label: str, errors: list[FieldError], document: Any) -> list[FieldError]:
    if not label:
        return errors
    if isinstance(document, dict):
        name = (
            (document.get("metadata") or {}).get("name")
            if isinstance(document.get("metadata"), dict)
            else None
        )
        label += f" ({document.get('kind')}/{name})" if name else ""
    return [FieldError(f"{label}: {e.path}" if e.path else label, e.message) for e in errors]


def _check_unique(resources: list[AnyResource], source: str) -> None:
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        key = (resource.kind, resource.name)
        if key in seen:
            raise InvalidManifest(
                source, [FieldError("metadata.name", f"{key[0]}/{key[1]} appears twice")]
            )
        seen.add(key)
