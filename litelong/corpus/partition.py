"""Which corpus files each shard reads under `partition: files`: a deterministic split by size.

Every shard computes the same split from the file list and sizes alone, so shards agree without
talking to each other, and the split does not depend on how many shards run at once. Files are
taken largest first (ties by path) and each goes to the shard holding the fewest bytes so far
(ties by shard number), which keeps the largest shard within one file of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

from .sources import CorpusFile, CorpusReadError, InvalidCorpus


def assign_files(files: Sequence[CorpusFile], of: int) -> list[list[CorpusFile]]:
    """`of` lists of files, each in corpus order; raises InvalidCorpus when files are fewer
    than shards (a shard without files would commit an empty part)."""
    return split_by_size(files, [file_size(file) for file in files], of)


def split_by_size(
    files: Sequence[CorpusFile], sizes: Sequence[int], of: int
) -> list[list[CorpusFile]]:
    """The split of `assign_files` for files of known sizes."""
    if len(files) < of:
        raise InvalidCorpus(
            f"partition files: {len(files)} corpus file(s) for {of} shards (parallelism); "
            f"lower parallelism to at most {len(files)} or use partition content"
        )
    loads = [0] * of
    owner: dict[int, int] = {}
    for index in sorted(range(len(files)), key=lambda i: (-sizes[i], files[i].uri, i)):
        shard = min(range(of), key=lambda s: (loads[s], s))
        owner[index] = shard
        loads[shard] += sizes[index]
    shards: list[list[CorpusFile]] = [[] for _ in range(of)]
    for index, file in enumerate(files):
        shards[owner[index]].append(file)
    return shards


def file_size(file: CorpusFile) -> int:
    """Stored bytes of a corpus file (what reading it costs)."""
    fs, path = file.open_fs()
    try:
        return int(fs.size(path))
    except OSError as exc:
        raise CorpusReadError(f"{file.uri}: cannot read its size: {exc}") from exc
