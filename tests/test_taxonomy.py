"""The BISAC taxonomy as a TopicDebate spec and `litelong taxonomy` use it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from litelong.api.v1alpha1.topicdebate import TaxonomySelection
from litelong.taxonomy import SelectionError, Subject, Taxonomy, UnknownSelection, load_bisac

from .conftest import REPO, CliResult

Cli = Callable[..., CliResult]
SAMPLE = str(REPO / "manifests" / "samples" / "topicdebate.yaml")


def select(**fields: Any) -> list[Subject]:
    return load_bisac().select(TaxonomySelection(**fields))


def codes(subjects: list[Subject]) -> list[str]:
    return [s.code for s in subjects]


# -- the shipped data ------------------------------------------------------------------------


def test_the_shipped_taxonomy_has_every_heading_and_subject() -> None:
    bisac = load_bisac()
    assert len(bisac.headings) == 53
    assert len(bisac.subjects) == 5726
    assert len({s.code for s in bisac.subjects}) == 5726
    assert bisac.headings[:2] == ("Antiques & Collectibles", "Literary Collections")
    assert bisac.date == "2025-08-29"


def test_the_licence_and_notice_ship_beside_the_data() -> None:
    data = resources.files("litelong.taxonomy") / "data"
    assert (data / "LICENSE").read_text().startswith("MIT License")
    assert "rlueder/isbn-bisac-tools" in (data / "NOTICE.md").read_text()


def test_labels_are_clean_text_under_their_heading() -> None:
    for subject in load_bisac().subjects:
        assert "\xa0" not in subject.label and "  " not in subject.label, subject
        assert "see also" not in subject.label and not subject.label.endswith("*"), subject
        assert subject.label == f"{subject.heading.upper()} / {subject.name}", subject
        assert "\xa0" not in subject.heading


def test_the_shipped_file_is_already_in_normal_form() -> None:
    raw = (resources.files("litelong.taxonomy") / "data" / "bisac.json.gz").read_bytes()
    document = json.loads(gzip.decompress(raw))
    assert Taxonomy.from_document(document).to_document() == document


def test_subject_names_drop_the_heading() -> None:
    bisac = load_bisac()
    acoustics = bisac.by_code("SCI001000")
    assert acoustics == Subject("SCI001000", "Science", "SCIENCE / Acoustics & Sound")
    assert acoustics.name == "Acoustics & Sound" and not acoustics.is_general
    assert bisac.by_code("SCI004000").name == "Space Science / Astronomy"
    assert bisac.by_code("sci008000").name == "Life Sciences / Biology"
    assert bisac.by_code("SCI000000").is_general
    with pytest.raises(KeyError, match="XYZ999999"):
        bisac.by_code("XYZ999999")


def test_upstream_quirks_are_normalised() -> None:
    document = {
        "date": "2025-01-01",
        "categories": [
            {
                "heading": "Games and  Activities",
                "notes": ["dropped"],
                "subjects": [
                    {"code": "GAM001000", "label": "GAMES & ACTIVITIES\xa0/ Board *"},
                    {
                        "code": "GAM004000",
                        "label": "GAMES & ACTIVITIES\xa0/ Gambling / General (see also\xa0"
                        "SELF-HELP\xa0/ Compulsive Behavior (incl. Gambling))",
                    },
                ],
            },
            {
                "heading": "Pets",
                "subjects": [
                    {"code": "NON000000", "label": "PETS / Non-Classifiable"},
                    {"code": "GAM001000", "label": "PETS / Duplicate"},
                ],
            },
        ],
    }
    taxonomy = Taxonomy.from_document(document)
    assert [(s.code, s.heading, s.label) for s in taxonomy.subjects] == [
        ("GAM001000", "Games & Activities", "GAMES & ACTIVITIES / Board"),
        ("GAM004000", "Games & Activities", "GAMES & ACTIVITIES / Gambling / General"),
        ("NON000000", "Pets", "PETS / Non-Classifiable"),
    ]


# -- selection -------------------------------------------------------------------------------


def test_no_include_selects_every_subject_in_taxonomy_order() -> None:
    assert select() == list(load_bisac().subjects)


def test_code_globs_select_matching_codes_in_any_case() -> None:
    science = select(include=["SCI*"])
    assert len(science) == 115 and all(s.code.startswith("SCI") for s in science)
    assert select(include=["sci*"]) == science
    assert codes(select(include=["MAT003000"])) == ["MAT003000"]
    assert sorted(codes(select(include=["sci00?000"]))) == [
        f"SCI00{d}000" for d in (0, 1, 3, 4, 5, 6, 7, 8, 9)
    ]


def test_headings_select_their_subjects_in_any_case() -> None:
    science = select(include=["SCI*"])
    assert select(include=["Science"]) == science
    assert select(include=["SCIENCE"]) == science
    assert select(include=["  science "]) == science
    games = select(include=["Games & Activities"])
    assert games == select(include=["games and activities"]) == select(include=["GAM*"])


def test_results_follow_taxonomy_order_whatever_the_include_order() -> None:
    both = select(include=["MAT*", "SCI*"])
    assert both == select(include=["SCI*", "MAT*"])
    assert both == [s for s in load_bisac().subjects if s.code[:3] in {"MAT", "SCI"}]


def test_exclude_removes_after_include() -> None:
    chosen = select(include=["Science", "Mathematics"], exclude=["MAT*", "SCI000000"])
    assert len(chosen) == 114
    assert all(s.heading == "Science" and s.code != "SCI000000" for s in chosen)
    everything_but_fiction = select(exclude=["fiction"])
    assert len(everything_but_fiction) == 5726 - 393


def test_an_exclude_outside_the_include_is_not_an_error() -> None:
    assert select(include=["SCI*"], exclude=["Fiction"]) == select(include=["SCI*"])


def test_a_typo_names_the_entry_and_suggests_a_heading() -> None:
    with pytest.raises(UnknownSelection) as caught:
        select(include=["Sciense", "MAT*"])
    message = str(caught.value)
    assert "taxonomy.include: 'Sciense' matches no BISAC subject code or heading" in message
    assert "did you mean Science" in message
    assert isinstance(caught.value, ValueError)


def test_every_unknown_entry_is_reported_at_once() -> None:
    with pytest.raises(UnknownSelection) as caught:
        select(include=["SCI", "MAT00300"], exclude=["Ficton"])
    assert [(field, entry) for field, entry, _ in caught.value.unknown] == [
        ("include", "SCI"),
        ("include", "MAT00300"),
        ("exclude", "Ficton"),
    ]
    message = str(caught.value)
    assert "SCI* (Science)" in message and "MAT003000" in message and "Fiction" in message


def test_a_selection_that_leaves_nothing_is_an_error() -> None:
    with pytest.raises(SelectionError, match="leaves no subject"):
        select(include=["SCI*"], exclude=["Science"])


def test_max_subjects_is_the_same_sample_for_the_same_seed() -> None:
    first = select(include=["SCI*", "MAT*"], max_subjects=20, seed=0)
    assert len(first) == 20
    assert select(include=["SCI*", "MAT*"], max_subjects=20, seed=0) == first
    assert select(include=["SCI*", "MAT*"], max_subjects=20, seed=1) != first
    order = [s.code for s in load_bisac().subjects]
    assert codes(first) == sorted(codes(first), key=order.index)


def test_a_larger_sample_keeps_the_smaller_one() -> None:
    previous: set[str] = set()
    for size in (1, 2, 5, 20, 21, 100):
        sample = set(codes(select(max_subjects=size, seed=7)))
        assert len(sample) == size and previous <= sample
        previous = sample


def test_the_sample_is_pinned_across_machines() -> None:
    """The ranking is blake2b over `seed:code`: this list changes only if the data does."""
    assert codes(select(include=["SCI*", "MAT*"], max_subjects=3, seed=0)) == PINNED_SAMPLE


def test_max_subjects_above_the_selection_keeps_everything() -> None:
    assert select(include=["PET*"], max_subjects=1000) == select(include=["Pets"])


# -- siblings --------------------------------------------------------------------------------


def test_siblings_share_the_heading_and_exclude_the_subject() -> None:
    bisac = load_bisac()
    botany = bisac.by_code("SCI011000")
    assert botany.name == "Life Sciences / Botany"
    siblings = bisac.siblings(botany)
    assert siblings and botany not in siblings
    assert all(s.heading == "Science" for s in siblings)
    assert len(siblings) == len(set(siblings))


def test_siblings_in_the_same_branch_come_first() -> None:
    bisac = load_bisac()
    botany = bisac.by_code("SCI011000")
    siblings = bisac.siblings(botany, limit=5)
    assert len(siblings) == 5
    assert all(s.name.startswith("Life Sciences / ") for s in siblings)
    assert bisac.siblings(botany, limit=5) == siblings
    assert bisac.siblings(botany)[:5] == siblings


def test_siblings_leave_out_what_contains_or_lies_inside_the_subject() -> None:
    bisac = load_bisac()
    botany = bisac.by_code("SCI011000")
    names = {s.name for s in bisac.siblings(botany)}
    assert "General" not in names and "Life Sciences / General" not in names
    life_sciences = bisac.by_code("SCI086000")
    assert life_sciences.name == "Life Sciences / General"
    around = bisac.siblings(life_sciences)
    assert around and not any(s.name.startswith("Life Sciences") for s in around)
    assert bisac.siblings(bisac.by_code("SCI000000")) == []


# -- the CLI ---------------------------------------------------------------------------------


def test_the_command_lists_subjects_and_counts_them(cli: Cli) -> None:
    result = cli("taxonomy", "--include", "MAT*", "--include", "SCI004000")
    assert result.code == 0, result.stderr
    assert "MAT003000" in result.stdout and "SCI004000" in result.stdout
    assert "Space Science / Astronomy" in result.stdout
    assert "56 subjects in 2 headings" in result.stdout


def test_the_command_reads_the_selection_of_a_spec(cli: Cli) -> None:
    result = cli("taxonomy", "--spec", SAMPLE, "--json")
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"code": s.code, "heading": s.heading, "label": s.label, "name": s.name}
        for s in select(include=["SCI*", "MAT*"], max_subjects=4, seed=0)
    ]
    table = cli("taxonomy", "--spec", SAMPLE)
    assert "4 subjects in 2 headings" in table.stdout


def test_spec_and_selection_options_do_not_mix(cli: Cli) -> None:
    result = cli("taxonomy", "--spec", SAMPLE, "--include", "SCI*")
    assert result.code == 2 and "--spec" in result.stderr


def test_a_spec_without_a_topicdebate_exits_2(cli: Cli) -> None:
    result = cli("taxonomy", "--spec", str(REPO / "manifests" / "samples" / "bm25index.yaml"))
    assert result.code == 2 and "no TopicDebate" in result.stderr


def test_headings_counts_subjects_per_heading(cli: Cli) -> None:
    result = cli("taxonomy", "--headings", "--include", "Science", "--include", "Mathematics")
    assert result.code == 0, result.stderr
    assert "Mathematics" in result.stdout and "115" in result.stdout and "55" in result.stdout
    lines = cli("taxonomy", "--headings", "--json").stdout.splitlines()
    counts = [json.loads(line) for line in lines]
    assert len(counts) == 53 and sum(c["subjects"] for c in counts) == 5726
    assert counts[0] == {"heading": "Antiques & Collectibles", "subjects": 57}


def test_a_typo_exits_2_with_a_suggestion(cli: Cli) -> None:
    result = cli("taxonomy", "--include", "Sciense")
    assert result.code == 2
    assert "'Sciense'" in result.stderr and "Science" in result.stderr
    assert result.stdout == ""


def test_the_command_explains_itself(cli: Cli) -> None:
    result = cli("taxonomy", "--help")
    assert result.code == 0 and "Usage: litelong taxonomy" in result.stdout


PINNED_SAMPLE = ["MAT000000", "SCI019000", "SCI008000"]
