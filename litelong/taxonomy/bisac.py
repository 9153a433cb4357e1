"""The BISAC subject taxonomy: which subjects a TopicDebate selects, and what each should avoid.

TopicDebate asks models for topics inside one subject at a time. The selection must be the same
on every machine (a spec names its subjects by code globs and headings, samples them by seed),
and a typo in it must fail loudly rather than select nothing.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..api.v1alpha1.topicdebate import TaxonomySelection

_DATA_FILE = "bisac.json.gz"
_SEP = " / "


class SelectionError(ValueError):
    """A taxonomy selection that cannot be honoured (the CLI exits 2)."""


class UnknownSelection(SelectionError):
    """Include or exclude entries that match no subject code and no heading.

    `unknown` holds `(field, entry, suggestions)` for every such entry, so one run reports
    them all.
    """

    def __init__(self, unknown: Sequence[tuple[str, str, list[str]]]) -> None:
        self.unknown = list(unknown)
        lines = []
        for field, entry, suggestions in self.unknown:
            hint = (
                f"did you mean {', '.join(suggestions)}?"
                if suggestions
                else "`litelong taxonomy --headings` lists the headings"
            )
            lines.append(
                f"taxonomy.{field}: {entry!r} matches no BISAC subject code or heading; {hint}"
            )
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Subject:
    """One BISAC subject, e.g. `SCI004000`, heading `Science`, label `SCIENCE / Astronomy`."""

    code: str
    heading: str
    label: str

    @property
    def name(self) -> str:
        """The label without its heading: `Astronomy`, `Life Sciences / Botany`."""
        return self.label.split(_SEP, 1)[-1]

    @property
    def title(self) -> str:
        """What a prompt calls the subject: `Astronomy`, `Physics` for `Physics / General`,
        the heading itself for the heading's own `General`."""
        parts = self.name.split(_SEP)
        if parts[-1] == "General":
            parts = parts[:-1]
        return _SEP.join(parts) or self.heading

    @property
    def is_general(self) -> bool:
        """A `... / General` subject covers every subject under its parent."""
        return self.label.rsplit(_SEP, 1)[-1] == "General"

    @property
    def _scope(self) -> tuple[str, ...]:
        """The part of its heading the subject covers: `Life Sciences / General` covers
        `("Life Sciences",)`, the heading's own `General` covers the whole heading `()`."""
        parts = tuple(self.name.split(_SEP))
        return parts[:-1] if self.is_general else parts


class Taxonomy:
    """Subjects in data order, one per code, with selection and sibling look-ups.

    A code listed under several headings keeps its first heading: the source has had
    `NON000000` ("Non-Classifiable") under every heading, and a subject must have one.
    """

    def __init__(self, subjects: Iterable[Subject], date: str = "") -> None:
        by_code: dict[str, Subject] = {}
        for subject in subjects:
            by_code.setdefault(subject.code, subject)
        self.date = date
        self.subjects: tuple[Subject, ...] = tuple(by_code.values())
        self.headings: tuple[str, ...] = tuple(dict.fromkeys(s.heading for s in self.subjects))
        self._by_code = by_code
        self._codes = list(by_code)
        self._by_heading: dict[str, list[Subject]] = {}
        for subject in self.subjects:
            self._by_heading.setdefault(_key(subject.heading), []).append(subject)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Taxonomy:
        """Read `{"date", "categories": [{"heading", "subjects": [{"code", "label"}]}]}`.

        Accepts the upstream file and the shipped one alike: labels and headings are normalised
        here (see `_clean_label`, `_clean_heading`), so the shipped file is this normal form.
        """
        subjects = []
        for category in document["categories"]:
            for entry in category["subjects"]:
                label = _clean_label(entry["label"])
                heading = _clean_heading(category["heading"], label.split(_SEP, 1)[0])
                code = entry["code"].strip().upper()
                subjects.append(Subject(code=code, heading=heading, label=label))
        return cls(subjects, date=str(document.get("date", "")))

    def to_document(self) -> dict[str, Any]:
        """The compact form shipped as package data (no notes; normalised labels)."""
        categories = [
            {
                "heading": heading,
                "subjects": [
                    {"code": s.code, "label": s.label} for s in self._by_heading[_key(heading)]
                ],
            }
            for heading in self.headings
        ]
        return {"date": self.date, "categories": categories}

    def by_code(self, code: str) -> Subject:
        """The subject with this code (any case); KeyError if there is none."""
        try:
            return self._by_code[code.strip().upper()]
        except KeyError:
            raise KeyError(f"no BISAC subject {code!r}") from None

    def select(self, selection: TaxonomySelection) -> list[Subject]:
        """The subjects a TopicDebate's `spec.taxonomy` names, in taxonomy order.

        `include` and `exclude` entries are code globs (`SCI*`, `mat003000`) or heading names
        (`Science`, `GAMES AND ACTIVITIES`), case-insensitive; empty `include` means every
        subject, `exclude` applies after it. An entry that matches nothing in the whole
        taxonomy raises UnknownSelection. `max_subjects` keeps the subjects ranked first by a
        hash of `(seed, code)`: the same seed gives the same subjects on any machine, and
        raising `max_subjects` only adds subjects.
        """
        unknown: list[tuple[str, str, list[str]]] = []

        def matched(field: str, entries: list[str]) -> set[str]:
            codes: set[str] = set()
            for entry in entries:
                found = self._match(entry)
                if not found:
                    unknown.append((field, entry, self._suggest(entry)))
                codes |= found
            return codes

        included = matched("include", selection.include) if selection.include else set(self._codes)
        excluded = matched("exclude", selection.exclude)
        if unknown:
            raise UnknownSelection(unknown)
        chosen = included - excluded
        if not chosen:
            raise SelectionError(
                f"taxonomy: include {selection.include or 'everything'} minus exclude "
                f"{selection.exclude} leaves no subject"
            )
        if selection.max_subjects is not None and len(chosen) > selection.max_subjects:
            ranked = sorted(chosen, key=lambda code: _rank(selection.seed, code))
            chosen = set(ranked[: selection.max_subjects])
        return [s for s in self.subjects if s.code in chosen]

    def siblings(self, subject: Subject, limit: int | None = None) -> list[Subject]:
        """Other subjects of the same heading: the avoid-list that keeps a prompt's topics
        inside `subject`.

        Subjects that contain `subject` (its `General` parents) or lie inside it are left out,
        since avoiding them would contradict the subject. Those sharing its second-level part
        (`Life Sciences` for `Life Sciences / Botany`) come first, then the rest; each group
        in taxonomy order.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        scope = subject._scope
        group = subject.name.split(_SEP, 1)[0]
        near: list[Subject] = []
        far: list[Subject] = []
        for other in self._by_heading.get(_key(subject.heading), []):
            other_scope = other._scope
            if (
                other.code == subject.code
                or _within(scope, other_scope)
                or _within(other_scope, scope)
            ):
                continue
            (near if other.name.split(_SEP, 1)[0] == group else far).append(other)
        return (near + far)[:limit]

    def _match(self, entry: str) -> set[str]:
        pattern = entry.strip().upper()
        codes = set(fnmatch.filter(self._codes, pattern)) if pattern else set()
        codes.update(s.code for s in self._by_heading.get(_key(entry), []))
        return codes

    def _suggest(self, entry: str) -> list[str]:
        """Headings, code prefixes (`SCI*`) and codes that look like a mistyped entry."""
        candidates: dict[str, str] = {}
        for subject in self.subjects:
            prefix = subject.code[:3]
            candidates.setdefault(f"{prefix.casefold()}*", f"{prefix}* ({subject.heading})")
            candidates[subject.code.casefold()] = subject.code
        for heading in self.headings:
            candidates[_key(heading)] = heading
        close = difflib.get_close_matches(_key(entry), list(candidates), n=3, cutoff=0.6)
        return [candidates[key] for key in close]


@functools.cache
def load_bisac() -> Taxonomy:
    """The BISAC taxonomy shipped with litelong (see `data/NOTICE.md`), read once."""
    data = (resources.files(__package__) / "data" / _DATA_FILE).read_bytes()
    return Taxonomy.from_document(json.loads(gzip.decompress(data)))


def _key(text: str) -> str:
    """Heading names compare case-insensitively, with "and" equal to "&"."""
    return " ".join(text.casefold().split()).replace(" and ", " & ")


def _rank(seed: int, code: str) -> tuple[bytes, str]:
    """A subject's place in the `max_subjects` sample: independent of the other subjects, so
    a larger sample extends a smaller one, and stable across Python versions and machines."""
    return hashlib.blake2b(f"{seed}:{code}".encode(), digest_size=8).digest(), code


def _within(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    return inner[: len(outer)] == outer


def _clean_label(label: str) -> str:
    """Upstream labels carry publishing marks that are not part of a subject's name.

    Whitespace (including the U+00A0 before the first " /") is collapsed to single spaces,
    "(see also ...)" cross-references are dropped (they contain " / " of other subjects), and
    the trailing "*" that marks a code new in the latest edition is removed.
    """
    text = " ".join(label.split())
    while (start := text.find("(see also")) >= 0:
        depth, end = 0, len(text)
        for position in range(start, len(text)):
            depth += {"(": 1, ")": -1}.get(text[position], 0)
            if depth == 0:
                end = position + 1
                break
        text = f"{text[:start]} {text[end:]}"
        text = " ".join(text.split())
    return text.removesuffix("*").rstrip()


def _clean_heading(heading: str, label_prefix: str) -> str:
    """The upstream file spells four headings with "and" where BISAC and their labels have "&"
    (`Games and Activities`, label `GAMES & ACTIVITIES / ...`); use the "&" form."""
    name = " ".join(heading.split())
    if _key(name) != _key(label_prefix):
        raise ValueError(f"BISAC label {label_prefix!r}... is not under heading {heading!r}")
    if name.casefold() == label_prefix.casefold():
        return name
    return name.replace(" and ", " & ")
