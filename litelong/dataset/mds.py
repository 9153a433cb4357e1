"""MDS output: mosaicml-streaming's format (version 2, uncompressed), and a reader for it.

Written here so the CPU workers need neither `streaming` nor the torch and torchvision it
requires. For the same samples and size limit the files are the bytes `streaming.MDSWriter`
writes, except that a first sample larger than the limit never leaves an empty shard before it.
`read_mds` reads them back with numpy alone.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .sample import Sample
from .writer_base import SampleWriter

MDS_INDEX = "index.json"

# The MDS columns, in the sorted order MDSWriter stores them.
MDS_COLUMNS = {
    "id": "str",
    "indices": "ndarray:uint32",
    "input_ids": "ndarray:uint32",
    "subject_code": "str",
}

# Mode nextlong adds `roles`: one code per span (ROLES[code]), so training can tell a sample's
# meta-chunks from its hard negatives. Other modes keep the four columns above.
ROLES = ("doc", "meta", "negative")
ROLES_COLUMN = {"roles": "ndarray:uint8"}

# A shard (streaming/base/format/mds/writer.py, encode_joint_shard):
#   uint32 n | uint32 offsets[n + 1] (from the file's start) | config JSON | n samples
# A sample (encode_sample): uint32 size of each variable-size column, then each column's bytes.
# `ndarray:<dtype>` without a shape (encodings.py, NDArray.encode): one byte ndim << 2 | k,
# the shape as uint8/16/32/64 (k = 0..3, the smallest that holds the largest dimension), then
# the values. Little-endian throughout, as numpy writes on every platform we run on.

# Bytes per read when a shard's samples are copied from its temporary file.
_COPY_CHUNK = 1 << 20

_SHAPE_DTYPES = ("<u1", "<u2", "<u4", "<u8")
_VALUE_DTYPES = {
    8: "uint8",
    9: "int8",
    16: "uint16",
    17: "int16",
    18: "float16",
    32: "uint32",
    33: "int32",
    34: "float32",
    64: "uint64",
    65: "int64",
    66: "float64",
}


def mds_columns(roles: bool = False) -> dict[str, str]:
    """The MDS columns: with `roles`, also each span's role code."""
    return {**MDS_COLUMNS, **ROLES_COLUMN} if roles else dict(MDS_COLUMNS)


def span_roles(row: dict[str, Any]) -> list[str]:
    """The role of each span of an MDS row read back ("doc" for every span without `roles`)."""
    if "roles" not in row:
        return ["doc"] * len(row["indices"])
    return [ROLES[code] for code in row["roles"].tolist()]


def mds_config(shard_size_bytes: int, columns: dict[str, str] = MDS_COLUMNS) -> dict[str, Any]:
    """The shard-writing configuration MDSWriter stores in each shard and in index.json."""
    names = sorted(columns)
    return {
        "version": 2,
        "format": "mds",
        "compression": None,
        "hashes": [],
        "size_limit": shard_size_bytes,
        "column_names": names,
        "column_encodings": [columns[name] for name in names],
        "column_sizes": [None] * len(names),
    }


def _mds_json(obj: Any) -> bytes:
    """Python's json.dumps with sorted keys and default separators: MDSWriter's exact bytes."""
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def _mds_ndarray(array: np.ndarray) -> bytes:
    shape = np.array(array.shape, np.int64)
    largest = int(shape.max())
    kind = 0 if largest < 1 << 8 else 1 if largest < 1 << 16 else 2 if largest < 1 << 32 else 3
    head = bytes([(array.ndim << 2) | kind]) + shape.astype(_SHAPE_DTYPES[kind]).tobytes()
    return head + np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def _mds_sample(sample: Sample, names: list[str]) -> bytes:
    indices = np.array([(span.start, span.end) for span in sample.spans], np.uint32)
    columns = {
        "id": sample.id.encode("utf-8"),
        "indices": _mds_ndarray(indices),
        "input_ids": _mds_ndarray(sample.input_ids),
        "subject_code": sample.subject_code.encode("utf-8"),
    }
    if "roles" in names:
        codes = np.array([ROLES.index(span.role) for span in sample.spans], np.uint8)
        columns["roles"] = _mds_ndarray(codes)
    data = [columns[name] for name in names]
    return np.array([len(datum) for datum in data], "<u4").tobytes() + b"".join(data)


class MdsWriter(SampleWriter):
    """A shard's header (sample count and offsets) comes before its samples, so the encoded
    samples go to a temporary file beside it (`.shard.NNNNN.mds.tmp`) as they come and only their
    sizes are kept; finishing the shard writes the header and config, then copies the temporary
    file after them. Memory holds one sample, whatever the shard size."""

    def __init__(self, folder: Path, shard_size_bytes: int, roles: bool = False) -> None:
        if shard_size_bytes >= 1 << 32:
            raise ValueError("MDS shards hold 32-bit offsets: shard_size_bytes must be < 4 GiB")
        super().__init__(folder, shard_size_bytes, roles)
        self._names = sorted(mds_columns(roles))
        self._config = mds_config(shard_size_bytes, mds_columns(roles))
        self._config_data = _mds_json(self._config)
        self._shards: list[dict[str, Any]] = []
        self._pending: BinaryIO | None = None
        self._sizes: list[int] = []
        self._pending_size = 8 + len(self._config_data)

    def _basename(self) -> str:
        return f"shard.{len(self._shards):05d}.mds"

    def _temporary(self) -> Path:
        return self.folder / f".{self._basename()}.tmp"

    def _write(self, sample: Sample) -> None:
        data = _mds_sample(sample, self._names)
        if self._sizes and self.shard_size_bytes < self._pending_size + len(data) + 4:
            self._flush()
        if self._pending_size + len(data) + 4 >= 1 << 32:
            raise ValueError("an MDS shard would pass 4 GiB, which its 32-bit offsets cannot hold")
        if self._pending is None:
            self._pending = self._temporary().open("w+b")
        self._pending.write(data)
        self._sizes.append(len(data))
        self._pending_size += len(data) + 4

    def _flush(self) -> None:
        if self._pending is None:
            return
        count = len(self._sizes)
        offsets = np.cumsum([0, *self._sizes], dtype=np.int64)
        offsets += 4 + 4 * (count + 1) + len(self._config_data)
        basename = self._basename()
        with (self.folder / basename).open("wb") as out:
            out.write(np.uint32(count).astype("<u4").tobytes())
            out.write(offsets.astype("<u4").tobytes())
            out.write(self._config_data)
            self._pending.seek(0)
            shutil.copyfileobj(self._pending, out, _COPY_CHUNK)
        self._drop_pending()
        raw_data = {"basename": basename, "bytes": int(offsets[-1]), "hashes": {}}
        self._shards.append({"samples": count, "raw_data": raw_data, "zip_data": None})
        self._shards[-1].update(self._config)
        self._files.append(basename)

    def _drop_pending(self) -> None:
        """Close and delete the temporary file of the shard being written, if any."""
        if self._pending is not None:
            self._pending.close()
            self._pending = None
            self._temporary().unlink(missing_ok=True)
        self._sizes = []
        self._pending_size = 8 + len(self._config_data)

    def _finish(self) -> None:
        self._flush()
        (self.folder / MDS_INDEX).write_bytes(_mds_json({"version": 2, "shards": self._shards}))
        self._files.append(MDS_INDEX)

    def _abort(self) -> None:
        self._drop_pending()


def read_mds(folder: Path) -> Iterator[dict[str, Any]]:
    """The samples of an uncompressed MDS dataset, in order, one shard in memory at a time.

    Reads the `str`, `bytes` and `ndarray[:dtype[:shape]]` columns: enough to check what this
    module writes without mosaicml-streaming."""
    index = json.loads((Path(folder) / MDS_INDEX).read_bytes())
    if index.get("version") != 2:
        raise ValueError(f"{folder}: unsupported MDS index version {index.get('version')!r}")
    for shard in index["shards"]:
        if shard["format"] != "mds" or shard["compression"] or shard["zip_data"]:
            raise ValueError(f"{folder}: only uncompressed MDS shards can be read")
        data = (Path(folder) / shard["raw_data"]["basename"]).read_bytes()
        count = int(np.frombuffer(data, "<u4", 1)[0])
        offsets = np.frombuffer(data, "<u4", count + 1, 4)
        columns = list(zip(shard["column_names"], shard["column_encodings"], strict=True))
        sizes: list[int | None] = shard["column_sizes"]
        for begin, end in itertools.pairwise(offsets.tolist()):
            yield mds_decode_sample(data[begin:end], columns, sizes)


def mds_decode_sample(
    data: bytes, columns: list[tuple[str, str]], sizes: list[int | None]
) -> dict[str, Any]:
    variable = sum(size is None for size in sizes)
    heads = iter(np.frombuffer(data, "<u4", variable).tolist())
    lengths = [size if size is not None else next(heads) for size in sizes]
    position = 4 * variable
    sample: dict[str, Any] = {}
    for (name, encoding), length in zip(columns, lengths, strict=True):
        sample[name] = _mds_decode(encoding, data[position : position + length])
        position += length
    return sample


def _mds_decode(encoding: str, data: bytes) -> Any:
    name, _, config = encoding.partition(":")
    if name == "str":
        return data.decode("utf-8")
    if name == "bytes":
        return data
    if name != "ndarray":
        raise ValueError(f"read_mds cannot decode MDS encoding {encoding!r}")
    dtype, _, shape_text = config.partition(":")
    position = 0
    if not dtype:
        dtype = _VALUE_DTYPES[data[0]]
        position = 1
    if shape_text:
        shape = tuple(int(dim) for dim in shape_text.split(","))
    else:
        ndim, kind = data[position] >> 2, data[position] & 3
        width = 1 << kind
        shape = tuple(np.frombuffer(data, _SHAPE_DTYPES[kind], ndim, position + 1).tolist())
        position += 1 + ndim * width
    values = np.frombuffer(data, np.dtype(dtype).newbyteorder("<"), offset=position)
    return values.astype(dtype).reshape(shape)
