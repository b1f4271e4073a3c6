"""Seed derivation and content digests: one helper for each, used by every module.

A derived seed is a stable integer computed from a base seed and a purpose, so that
streams of random numbers never depend on call order or on Python's randomised ``hash``.
The hash algorithm is an argument because stored results depend on it: the GA and the
renderer derive with sha256, the metrics with blake2b, and changing either would change
every run's numbers.
"""

from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any, algorithm: str = "sha256", bits: int = 63) -> int:
    """A ``bits``-bit seed from ``parts`` joined by ":" (``derive_seed(7, "g001-i02")``).

    sha256 reads the first ``ceil(bits / 8)`` bytes of the digest (little-endian), blake2b
    uses an 8-byte digest; both keep the low ``bits`` bits."""
    key = ":".join(str(p) for p in parts).encode()
    nbytes = (bits + 7) // 8
    if algorithm == "sha256":
        raw = hashlib.sha256(key).digest()[:nbytes]
    elif algorithm == "blake2b":
        raw = hashlib.blake2b(key, digest_size=max(8, nbytes)).digest()
    else:
        raise ValueError(f"unknown seed algorithm {algorithm!r} (sha256 or blake2b)")
    return int.from_bytes(raw, "little") & ((1 << bits) - 1)


def torch_generator(*parts: Any, algorithm: str = "blake2b"):
    """A CPU ``torch.Generator`` seeded with ``derive_seed(*parts)``."""
    import torch

    return torch.Generator(device="cpu").manual_seed(derive_seed(*parts, algorithm=algorithm))


def array_digest(array: Any, *, header: str | None = None, length: int = 16) -> str:
    """A short sha256 of an array's bytes, after a header that names its shape (and, for
    tensors, dtype): equal digests mean equal contents. ``header`` defaults to the
    shape's repr, as the data fingerprints have always used."""
    import numpy as np

    if hasattr(array, "detach"):  # a torch tensor
        t = array.detach().to("cpu").contiguous()
        head = header if header is not None else f"{tuple(t.shape)}:{t.dtype}"
        data = t.numpy().tobytes()
    else:
        a = np.ascontiguousarray(array)
        head = header if header is not None else repr(a.shape)
        data = a.tobytes()
    digest = hashlib.sha256(head.encode())
    digest.update(data)
    return digest.hexdigest()[:length]


def json_digest(obj: Any, *, length: int = 24) -> str:
    """A short sha256 of ``obj`` as canonical JSON (sorted keys)."""
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


def file_digest(path: str, *, length: int = 12) -> str:
    """A short sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def bytes_digest(data: bytes) -> str:
    """The full sha256 hex digest of ``data`` (preset weights are checked with it)."""
    return hashlib.sha256(data).hexdigest()
