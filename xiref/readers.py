"""Validated readers of every file xiref reads back: a run's checkpoint.npz, config.json, progress.csv, timing.csv
and summary.json (also a --widths-from source's).

Each returns data of the shape the rest of xiref relies on, or raises UserError naming the file and what is
wrong, never another exception: `train --resume`, `plot` and `export` all read through here, so a damaged,
foreign or hand-edited file is refused in one line.
"""
import csv
import io
import json
import os

from . import checkpoint as ck
from .config import json_kind, normalize_config
from .errors import UserError


# ---------------------------------------------------------------------- text and JSON
def read_text(path):
    """The UTF-8 text of file `path`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a text file (byte {exc.start} is not UTF-8)") from None


def read_json_object(path):
    """The JSON object (dict) in file `path`."""
    try:
        value = json.loads(read_text(path))
    except (ValueError, RecursionError):
        raise UserError(f"{path} is not valid JSON") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds {json_kind(value)}, not a JSON object")
    return value


def read_config(path, required=()):
    """A run's config.json as {field: value}, every field it holds checked like its flag; `required`: the fields
    it must hold."""
    d = read_json_object(path)
    missing = [k for k in required if k not in d]
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)}")
    return normalize_config(d, path)


# ---------------------------------------------------------------------- progress.csv, timing.csv
def read_csv(path):
    """Rows of a progress.csv or timing.csv as {column: text} (the text as written, so a resumed run rewrites the
    same bytes); [] for a missing or empty file. Every row has every column, its `step` an integer above the
    previous row's, every other entry a number or empty."""
    if not os.path.exists(path):
        return []
    reader = csv.reader(io.StringIO(read_text(path)))
    try:
        table = [(reader.line_num, values) for values in reader if values]
    except csv.Error as exc:
        raise UserError(f"{path} is not a readable CSV file ({exc})") from None
    if not table:
        return []
    header = table[0][1]
    _check_header(path, header)
    rows = [_row(path, header, values, line) for line, values in table[1:]]
    _check_steps(path, rows, [line for line, _ in table[1:]])
    return rows


def _check_header(path, header):
    if "step" not in header:
        raise UserError(f"{path} has no step column (its first line: {','.join(header)[:60]})")
    if len(set(header)) != len(header) or "" in header:
        raise UserError(f"{path} has an empty or repeated column name in its first line")


def _row(path, header, values, line):
    if len(values) != len(header):
        raise UserError(f"{path} line {line} has {len(values)} of its {len(header)} columns (cut or damaged)")
    row = dict(zip(header, values))
    if not row["step"].isdigit() or not row["step"].isascii() or len(row["step"]) > 18:     # < 10^18 steps
        raise UserError(f"{path} line {line}: step {row['step'][:20]!r} is not an integer >= 0")
    for column, text in row.items():
        if text != "" and not _is_number(text):
            raise UserError(f"{path} line {line}: {column} {text[:20]!r} is not a number")
    return row


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_steps(path, rows, lines):
    for prev, row, line in zip(rows, rows[1:], lines[1:]):
        if int(row["step"]) <= int(prev["step"]):
            raise UserError(f"{path} line {line}: step {row['step']} does not follow step {prev['step']}")


# ---------------------------------------------------------------------- summary.json of a --widths-from source
def final_ofenet_widths(run_dir, n_layers):
    """Final OFENet per-layer widths (state block, then action block) of the finished xinet run in run_dir."""
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        raise UserError(f"--widths-from {run_dir}: no summary.json (is it a finished run?)")
    try:
        summary = read_json_object(path)
    except UserError as exc:
        raise UserError(f"--widths-from {run_dir}: {exc}") from None
    if summary.get("method") != "xinet":
        raise UserError(f"--widths-from {run_dir} is a {summary.get('method')!r} run, not an xinet run")
    alive = summary.get("alive_units")
    if not isinstance(alive, dict):
        raise UserError(f"--widths-from {run_dir}: summary.json's alive_units is {json_kind(alive)}, not an object")
    names = [f"ofenet/s{k + 1}" for k in range(n_layers)] + [f"ofenet/a{k + 1}" for k in range(n_layers)]
    if sorted(n for n in alive if n.startswith("ofenet/") and n != "ofenet/head") != sorted(names):
        raise UserError(f"--widths-from {run_dir}: its OFENet does not have {n_layers} layers per block")
    for name in names:
        if not _count(alive[name]):
            raise UserError(f"--widths-from {run_dir}: summary.json gives {name} the width {alive[name]!r}; "
                            "a width is an integer >= 0")
    return [alive[n] for n in names]


# ---------------------------------------------------------------------- checkpoint.npz of a run
def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(v, low=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _numbers_by_name(v):
    return isinstance(v, dict) and all(isinstance(k, str) and _number(x) for k, x in v.items())


def _evals(v):
    return isinstance(v, list) and all(isinstance(e, list) and len(e) == 2 and _count(e[0]) and _number(e[1])
                                       for e in v)


# the header entries of a run's checkpoint (runstate.save_run) -> (test, what it must be)
HEADER_KINDS = {
    "xiref_version": (lambda v: isinstance(v, str), "a version string"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "obs_dim": (lambda v: _count(v, 1), "an integer >= 1"),
    "act_dim": (lambda v: _count(v, 1), "an integer >= 1"),
    "rng": (lambda v: isinstance(v, dict), "an object"),
    "agent_scalars": (lambda v: isinstance(v, dict), "an object"),
    "step": (_count, "an integer >= 0"),
    "episode": (_count, "an integer >= 0"),
    "ep_return": (_number, "a number"),
    "ep_len": (_count, "an integer >= 0"),
    "recent_returns": (lambda v: isinstance(v, list) and all(map(_number, v)), "a list of numbers"),
    "evals": (_evals, "a list of [step, return] pairs"),
    "last_metrics": (_numbers_by_name, "an object of numbers"),
    "params_initial": (lambda v: v is None or _numbers_by_name(v), "null or an object of numbers"),
}


def read_run_checkpoint(path):
    """(header, flat arrays) of a run's checkpoint: intact (checksum), of this xiref version, every header entry
    present and of its kind, header["config"] normalised (config.normalize_config)."""
    from . import __version__
    header, flat = ck.load(path)
    if header.get("xiref_version") != __version__:      # first: another version may store other keys
        raise UserError(f"checkpoint from xiref {header.get('xiref_version')}, this is {__version__}")
    missing = [k for k in HEADER_KINDS if k not in header]
    if missing:
        raise UserError(f"checkpoint {path} is incomplete: its header has no {', '.join(missing)}")
    for key, (test, text) in HEADER_KINDS.items():
        if not test(header[key]):
            raise UserError(f"checkpoint {path} is corrupt: its header's {key} is not {text}")
    header["config"] = normalize_config(header["config"], f"checkpoint {path}")
    return header, flat
