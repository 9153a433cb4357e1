"""A seeded permutation of [0, n) evaluated at any positions, without listing [0, n).

Mode standard draws random documents from the whole index and the report draws a random
baseline: both need "position i of one seeded shuffle of the index" for a few thousand i, from
indexes of hundreds of millions of documents. A Feistel network on the smallest even-bit
domain 2^(2h) >= n is a bijection of that domain; walking each value's cycle until it falls
below n (cycle-walking) restricts it to a bijection of [0, n). Each value costs a few rounds of
integer mixing in numpy, so a draw of topK documents is O(topK) time and memory.
"""

from __future__ import annotations

import hashlib

import numpy as np

_ROUNDS = 4
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64's finaliser of value ^ key: a cheap, well-spread round function."""
    with np.errstate(over="ignore"):
        z = (values ^ key) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


class Permutation:
    """A bijection of [0, size), fixed by `seed` (any bytes-representable value)."""

    def __init__(self, size: int, seed: object) -> None:
        if size < 0:
            raise ValueError(f"a permutation needs a size >= 0, got {size}")
        self.size = size
        self._half = max(1, ((max(size, 2) - 1).bit_length() + 1) // 2)
        self._low = np.uint64((1 << self._half) - 1)
        digest = hashlib.blake2b(repr(("permutation", seed)).encode(), digest_size=8 * _ROUNDS)
        self._keys = [
            np.uint64(int.from_bytes(digest.digest()[8 * i : 8 * i + 8], "little"))
            for i in range(_ROUNDS)
        ]

    def _feistel(self, values: np.ndarray) -> np.ndarray:
        shift = np.uint64(self._half)
        left, right = values >> shift, values & self._low
        for key in self._keys:
            left, right = right, left ^ (_mix(right, key) & self._low)
        return (left << shift) | right

    def __call__(self, positions: np.ndarray | list[int] | range) -> np.ndarray:
        """The permuted values at `positions` (each in [0, size)), as int64."""
        values = np.asarray(positions, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() >= self.size):
            raise ValueError(f"positions must lie in [0, {self.size})")
        out = values.astype(np.uint64)
        if self.size <= 1:
            return out.astype(np.int64)
        walking = np.ones(out.shape, dtype=bool)
        while walking.any():  # at most a few turns: the domain is under 4x the size
            out[walking] = self._feistel(out[walking])
            walking = out >= np.uint64(self.size)
        return out.astype(np.int64)
