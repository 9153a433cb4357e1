"""The artifact store's commit protocol, on local disk and on a non-local fsspec filesystem."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from litelong.store import MANIFEST, ArtifactStore, EmptyOutput, NotCommitted


def build(folder: Path, text: str) -> None:
    (folder / "data.txt").write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "more.txt").write_text(text * 2)


@pytest.fixture(params=["file", "memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "file":
        return ArtifactStore(f"file://{tmp_path}/store")
    return ArtifactStore(f"memory://litelong-test-{tmp_path.name}")


def test_layout_is_namespace_kind_name_identity(store: ArtifactStore) -> None:
    artifact = store.artifact("BM25Index", "wiki", "abc123")
    assert artifact.uri == f"{store.uri}/default/bm25index/wiki/abc123"
    team = store.artifact("BM25Index", "wiki", "abc123", namespace="team-b")
    assert team.uri == f"{store.uri}/team-b/bm25index/wiki/abc123"


def test_the_same_name_in_two_namespaces_never_shares_an_output(store: ArtifactStore) -> None:
    mine = store.artifact("TopicDebate", "science", "h1", namespace="team-a")
    with mine.staging(0, 1) as folder:
        build(folder, "a")
        mine.commit_part(0, 1, folder, counts={"topics": 1})
    mine.commit({}, 1)
    assert not store.artifact("TopicDebate", "science", "h1", namespace="team-b").is_committed()
    with pytest.raises(NotCommitted, match="namespace team-b"):
        store.latest_committed("TopicDebate", "science", "team-b")
    assert store.latest_committed("TopicDebate", "science", "team-a").namespace == "team-a"
    assert [(a.namespace, a.name) for a in store.artifacts()] == [("team-a", "science")]


def test_stores_of_the_layout_before_namespaces_are_named_with_the_move_to_make(
    store: ArtifactStore,
) -> None:
    old = Path(store.root) / "bm25index" / "wiki" / "abc123"
    old.mkdir(parents=True)
    (old / MANIFEST).write_text("{}")
    assert store.legacy_folders() == ["bm25index"]
    assert list(store.artifacts()) == []


def test_a_commit_leaves_the_staging_folders_of_live_runs_alone(store: ArtifactStore) -> None:
    """Two runs of one artifact: the first to commit must not delete the other's work."""
    artifact = store.artifact("BM25Index", "wiki", "h1")
    with artifact.staging(0, 1) as other_run:
        build(other_run, "still being built")
        with artifact.staging(0, 1) as folder:
            build(folder, "x")
            artifact.commit_part(0, 1, folder)
        artifact.commit({}, 1)
        assert (other_run / "data.txt").read_text() == "still being built"


def test_a_complete_but_empty_output_is_not_committed_and_says_why(store: ArtifactStore) -> None:
    artifact = store.artifact("BM25Index", "wiki", "h1")
    with artifact.staging(0, 1) as folder:
        artifact.commit_part(0, 1, folder, counts={"documents": 0})
    with pytest.raises(EmptyOutput, match="0 documents"):
        artifact.commit({}, 1, check=lambda m: "0 documents" if not m.counts["documents"] else None)
    assert not artifact.is_committed()
    failure = artifact.failure()
    assert failure is not None and failure.reason == "EmptyOutput"
    assert artifact.describe_state() == "failed: EmptyOutput: 0 documents"
    assert failure.counts == {"documents": 0}
    assert artifact.part(0, 1) is None, "the empty part is discarded: a rerun rebuilds it"


def test_readers_refuse_an_uncommitted_artifact(any_store: ArtifactStore) -> None:
    artifact = any_store.artifact("BM25Index", "wiki", "h1")
    with pytest.raises(NotCommitted, match="nothing written"):
        artifact.manifest()
    with artifact.staging(0, 2) as folder:
        build(folder, "zero")
        artifact.commit_part(0, 2, folder, counts={"documents": 3})
    with pytest.raises(NotCommitted, match="1 of 2 parts committed"):
        artifact.manifest()
    with pytest.raises(NotCommitted):
        artifact.commit({}, 2)


def test_manifest_records_counts_sizes_and_checksums(any_store: ArtifactStore) -> None:
    artifact = any_store.artifact("BM25Index", "wiki", "h1")
    for shard in range(2):
        with artifact.staging(shard, 2) as folder:
            build(folder, f"shard {shard}")
            artifact.commit_part(
                shard, 2, folder, counts={"documents": 10 + shard}, skipped={"too_short": 1}
            )
    manifest = artifact.commit({"corpus": []}, 2)
    assert artifact.is_committed()
    assert manifest.counts == {"documents": 21}
    assert manifest.skipped == {"too_short": 2}
    assert [part.name for part in manifest.parts] == ["part-00000-of-00002", "part-00001-of-00002"]
    files = {record.path: record for record in manifest.parts[0].files}
    assert files["data.txt"].size == len("shard 0")
    assert files["sub/more.txt"].size == 2 * len("shard 0")
    assert manifest.size == sum(part.size for part in manifest.parts)
    assert artifact.manifest() == manifest
    local = artifact.local_part(manifest.parts[1])
    assert (local / "sub" / "more.txt").read_text() == "shard 1shard 1"


def test_checksums_hashed_on_threads_are_each_files_sha256_and_catch_a_changed_byte(
    tmp_path: Path,
) -> None:
    from litelong.store.manifest import file_records

    folder = tmp_path / "part"
    (folder / "sub").mkdir(parents=True)
    contents = {f"shard.{n:05d}.mds": bytes([n]) * (3 << 20) + b"tail" for n in range(5)}
    contents["sub/index.json"] = b"{}"
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    records = file_records(folder)
    assert [r.path for r in records] == sorted(contents)
    for record in records:
        data = contents[record.path]
        assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    shard = folder / "shard.00003.mds"
    changed = bytearray(shard.read_bytes())
    changed[len(changed) // 2] ^= 1
    shard.write_bytes(bytes(changed))
    assert file_records(folder) != records


def test_a_downloaded_part_whose_bytes_changed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELONG_CACHE", str(tmp_path / "cache"))
    store = ArtifactStore(f"memory://litelong-test-{tmp_path.name}")
    artifact = store.artifact("SynthesisRun", "run", "h1")
    with artifact.staging(0, 1) as folder:
        build(folder, "text")
        record = artifact.commit_part(0, 1, folder)
    store.fs.pipe_file(f"{artifact.path}/{record.name}/data.txt", b"texT")
    with pytest.raises(NotCommitted, match="does not match its recorded checksums"):
        artifact.local_part(record)


def test_a_killed_commit_leaves_no_committed_part(store: ArtifactStore) -> None:
    """A part folder without its record (killed between move and record) is not committed
    and is replaced by the retry."""
    artifact = store.artifact("BM25Index", "wiki", "h1")
    debris = Path(artifact.path) / "part-00000-of-00001"
    debris.mkdir(parents=True)
    (debris / "half-written").write_text("x")
    assert artifact.part(0, 1) is None
    with artifact.staging(0, 1) as folder:
        build(folder, "whole")
        artifact.commit_part(0, 1, folder)
    assert sorted(p.name for p in debris.iterdir()) == ["data.txt", "sub"]


def test_commit_removes_parts_of_a_run_with_another_shard_count(store: ArtifactStore) -> None:
    artifact = store.artifact("BM25Index", "wiki", "h1")
    with artifact.staging(0, 3) as folder:
        build(folder, "old")
        artifact.commit_part(0, 3, folder)
    with artifact.staging(0, 1) as folder:
        build(folder, "new")
        artifact.commit_part(0, 1, folder)
    artifact.commit({}, 1)
    names = sorted(p.name for p in Path(artifact.path).iterdir() if not p.name.startswith("."))
    assert names == [MANIFEST, "part-00000-of-00001", "part-00000-of-00001.json"]


def test_staging_is_cleaned_even_when_the_build_fails(store: ArtifactStore) -> None:
    artifact = store.artifact("BM25Index", "wiki", "h1")
    with pytest.raises(RuntimeError), artifact.staging(0, 1) as folder:
        build(folder, "x")
        raise RuntimeError("build failed")
    assert not folder.exists()
    assert artifact.part(0, 1) is None


def test_manifest_is_valid_json_written_last(store: ArtifactStore) -> None:
    artifact = store.artifact("BM25Index", "wiki", "h1")
    with artifact.staging(0, 1) as folder:
        build(folder, "x")
        artifact.commit_part(0, 1, folder)
    artifact.commit({"minChars": 20}, 1)
    manifest = json.loads((Path(artifact.path) / MANIFEST).read_text())
    assert manifest["spec"] == {"minChars": 20}
    assert not list(Path(artifact.path).glob("*.tmp-*"))


def test_latest_committed_ignores_uncommitted_hashes(store: ArtifactStore) -> None:
    with pytest.raises(NotCommitted):
        store.latest_committed("BM25Index", "wiki")
    committed = store.artifact("BM25Index", "wiki", "aaa")
    with committed.staging(0, 1) as folder:
        build(folder, "x")
        committed.commit_part(0, 1, folder)
    committed.commit({}, 1)
    store.artifact("BM25Index", "wiki", "bbb")  # nothing written
    pending = store.artifact("BM25Index", "wiki", "ccc")
    with pending.staging(0, 2) as folder:
        build(folder, "y")
        pending.commit_part(0, 2, folder)
    assert store.latest_committed("BM25Index", "wiki").spec_hash == "aaa"
    states = {a.spec_hash: a.describe_state() for a in store.artifacts()}
    assert states == {"aaa": "committed", "ccc": "1 of 2 parts committed, no _manifest.json"}


def commit(store: ArtifactStore, identity: str, namespace: str = "default") -> None:
    artifact = store.artifact("BM25Index", "wiki", identity, namespace)
    with artifact.staging(0, 1) as folder:
        build(folder, identity)
        artifact.commit_part(0, 1, folder, counts={"documents": 1})
    artifact.commit({}, 1)


def test_the_current_output_is_the_one_last_made_current_not_the_newest(
    any_store: ArtifactStore,
) -> None:
    commit(any_store, "spec-a")
    commit(any_store, "spec-b")
    assert any_store.latest_committed("BM25Index", "wiki").identity == "spec-b"
    any_store.artifact("BM25Index", "wiki", "spec-a").make_current()  # a revert, found committed
    assert any_store.latest_committed("BM25Index", "wiki").identity == "spec-a"
    assert sorted(a.identity for a in any_store.artifacts()) == ["spec-a", "spec-b"]


def test_without_a_usable_pointer_the_newest_output_is_current(store: ArtifactStore) -> None:
    commit(store, "spec-a")
    commit(store, "spec-b")
    store.artifact("BM25Index", "wiki", "spec-a").make_current()
    pointer = Path(store.root) / "default" / "bm25index" / "wiki" / "_current"
    assert pointer.read_text() == "spec-a"
    store.fs.rm(store.artifact("BM25Index", "wiki", "spec-a").path, recursive=True)  # discarded
    assert store.latest_committed("BM25Index", "wiki").identity == "spec-b"
    pointer.unlink()  # a store written before the pointer
    assert store.latest_committed("BM25Index", "wiki").identity == "spec-b"


def test_a_namespace_named_like_a_kind_with_pointers_is_not_the_old_layout(
    store: ArtifactStore,
) -> None:
    commit(store, "spec-a", namespace="bm25index")
    assert (Path(store.root) / "bm25index" / "bm25index" / "wiki" / "_current").is_file()
    assert store.legacy_folders() == []
    assert [(a.namespace, a.identity) for a in store.artifacts()] == [("bm25index", "spec-a")]
