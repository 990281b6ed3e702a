"""Atomic, self-checking checkpoints: one .npz of arrays plus a JSON header (docs/METHOD.md §8).

Nested dicts of arrays are flattened to 'a|b|c' keys ('|' never occurs in layer names, which contain '/');
nothing is pickled (allow_pickle=False on load).
A SHA-256 of every array is stored in the header, so truncation or corruption is detected on load.
"""
import contextlib
import hashlib
import json
import os

import numpy as np

from .errors import UserError


SEP = "|"


def flatten(tree, prefix=""):
    """{'a': {'b/c': x}} -> {'a|b/c': x}."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + SEP))
        else:
            out[key] = np.asarray(v)
    return out


def unflatten(flat, prefix):
    """Inverse of flatten for the keys under prefix ('agent|' …)."""
    tree = {}
    for key, v in flat.items():
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix):].split(SEP)
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return tree


def _digest(arrays):
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def atomic_write_bytes(path, write):
    """Call write(file) on path + '.tmp', fsync, then rename over path. A failed write (full disk, no
    permission, a signal) removes the temporary file and leaves path as it was; the OSError then names path."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, KeyboardInterrupt) as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror or str(exc), path) from None
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def save(path, header, arrays):
    """Write arrays + header atomically: a crash leaves the previous checkpoint intact."""
    arrays = flatten(arrays)
    header = dict(header, sha256=_digest(arrays))
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))


def load(path):
    """Returns (header, flat arrays). Raises UserError naming the problem for a missing, truncated or
    corrupt file."""
    if not os.path.exists(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(bytes(arrays.pop("__header__")).decode())
    except Exception as exc:  # zipfile, numpy and json raise many types for damaged files
        raise UserError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise UserError(f"checkpoint {path} is corrupt (its header is not a JSON object)")
    if header.get("sha256") != _digest(arrays):
        raise UserError(f"checkpoint {path} is corrupt (checksum mismatch)")
    return header, arrays
