"""Loading manifests: multi-document YAML → typed resources, or every problem by its field path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .v1alpha1 import API_VERSION, KINDS, Resource

API_GROUP = API_VERSION.split("/")[0]

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


def load_file(path: str | Path, skipped: list[str] | None = None) -> list[AnyResource]:
    """Every resource in a YAML file, in file order; raises InvalidManifest.

    Documents of other API groups (a kustomization.yaml beside the samples, a ConfigMap) are
    left out, each with a note appended to `skipped`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidManifest(str(path), [FieldError("", f"cannot read: {exc}")]) from exc
    return load_text(text, source=str(path), skipped=skipped)


def load_text(
    text: str, source: str = "<string>", skipped: list[str] | None = None
) -> list[AnyResource]:
    documents = [doc for doc in _read_yaml(text, source) if doc is not None]
    if not documents:
        raise InvalidManifest(source, [FieldError("", "no resources in the file")])
    resources, errors = [], []
    for number, document in enumerate(documents, start=1):
        label = f"document {number}" if len(documents) > 1 else ""
        if _other_group(document):
            if skipped is not None:
                what = f"{document.get('apiVersion')} {document.get('kind')}"
                skipped.append(f"{source}: skipped document {number} ({what}): not litelong.io")
            continue
        try:
            resources.append(parse(document))
        except InvalidManifest as exc:
            errors += [_prefixed(label, exc.errors, document)]
    if errors:
        raise InvalidManifest(source, [e for group in errors for e in group])
    _check_unique(resources, source)
    return resources


def _read_yaml(text: str, source: str) -> list[Any]:
    """The decoded documents; a syntax error or a key given twice in one mapping (YAML would
    keep the last silently, changing the spec) is an InvalidManifest naming `file:line`."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        for node in nodes:
            _check_duplicate_keys(node, "", source)
        return [yaml.SafeLoader("").construct_document(node) if node else None for node in nodes]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise InvalidManifest(where, [FieldError("", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidManifest(source, [FieldError("", f"invalid YAML: {exc}")]) from None


def _check_duplicate_keys(node: yaml.Node, path: str, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            child = f"{path}.{key}" if path else str(key)
            if key in seen:
                raise InvalidManifest(
                    f"{source}:{key_node.start_mark.line + 1}",
                    [FieldError(child, "key given twice (YAML would keep only the last)")],
                )
            seen.add(key)
            _check_duplicate_keys(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, f"{path}[{index}]", source)


def _other_group(document: Any) -> bool:
    """A Kubernetes object of another API group, which a litelong manifest may sit beside."""
    if not isinstance(document, dict):
        return False
    api_version = document.get("apiVersion")
    return isinstance(api_version, str) and not api_version.startswith(API_GROUP + "/")


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
