"""Command line: `python -m xiref {train,plot,export,reference} …` (also the `xiref` console script).

User errors end with one line `xiref: error: …` and exit status 2, never a traceback.
"""
import argparse
import inspect
import json
import re
import signal
import sys
import threading
from dataclasses import fields

import numpy as np

from .errors import UserError

# a dataclass field line `name: type = default  # comment`: the comment is the field's one-line documentation
FIELD_LINE = re.compile(r"^\s+(?P<name>\w+)\s*:[^=#]*=[^#]*#\s*(?P<comment>.*?)\s*$")


def field_comments(cls):
    """{field name: its trailing comment} over cls and its dataclass bases: the config's one-line field
    documentation (CleanRL style) is the `--help` text, so it is written once. Read from each class's source
    (inspect.getsource), one regex per line; {} for a class whose source is unavailable."""
    out, names = {}, {f.name for f in fields(cls)}
    for klass in reversed(cls.__mro__):                 # bases first: a subclass's comment wins
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        own = {}
        for m in filter(None, map(FIELD_LINE.match, lines)):
            if m["name"] in names:
                own.setdefault(m["name"], m["comment"])
        out.update(own)
    return out


class _Given(argparse.Action):
    """Stores the value and records the flag as given on the command line (`namespace.given`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", set()) | {self.dest}


def _add_config_args(parser, cls):
    """One --flag per dataclass field, its help the field's comment: tuple fields take comma-separated ints, a
    per-network knob (float | None) a number or `none`."""
    from .config import FIELD_KINDS
    comments = field_comments(cls)
    parse = {"bool": _parse_bool, "ints": _parse_ints, "knob": _parse_knob, "int": int, "float": float, "str": str}
    for f in fields(cls):
        kind, default = FIELD_KINDS[f.name], f.default
        metavar = {"bool": "{0,1}", "ints": "N,N,…", "knob": "X|none"}.get(kind)
        help_ = f"{comments.get(f.name, '')} (default: {_shown(kind, default)})".lstrip().replace("%", "%%")
        parser.add_argument("--" + f.name.replace("_", "-"), type=parse[kind], default=default, metavar=metavar,
                            help=help_, action=_Given)


def _shown(kind, default):
    if kind == "bool":
        return int(default)
    if kind == "ints":
        return ",".join(map(str, default)) or "none"
    if default is None:
        return "none"
    return repr(default) if isinstance(default, str) else default


def _parse_bool(s):
    if s.lower() in ("1", "true", "yes"):
        return True
    if s.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0 or 1, got {s!r}")


def _parse_ints(s):
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def _parse_knob(s):
    if s.strip().lower() == "none":
        return None
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {s!r}") from None


def build_parser():
    from .config import TrainConfig
    from .envs import EXACT_ENVS
    ap = argparse.ArgumentParser(prog="xiref", description="XiNet reference implementation (NumPy)")
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train sac | ofe | xinet | ofe-small on a gymnasium MuJoCo task")
    _add_config_args(tr, TrainConfig)
    tr.add_argument("--resume", action="store_true",
                    help=f"continue the run in --out from its checkpoint: bit-identically for {EXACT_ENVS}; "
                         "for other envs only from a checkpoint taken between episodes")
    tr.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    tr.add_argument("--quiet", action="store_true", help="print only the final JSON line")
    ex = sub.add_parser("export", help="write the compact pruned networks of a run as plain arrays (.npz)")
    ex.add_argument("run", help="run directory (with checkpoint.npz)")
    ex.add_argument("--out", required=True, help="output .npz")
    pl = sub.add_parser("plot", help="learning curves (mean ± std over runs) to PNG")
    pl.add_argument("runs", nargs="+", help="run directories (grouped by method)")
    pl.add_argument("--out", default="", help="output PNG (default: <first run>/curves.png)")
    rf = sub.add_parser("reference", help="write golden vectors (values and gradients of every component, "
                                          "docs/REFERENCE.md) as .npz files plus manifest.json")
    rf.add_argument("--out", required=True, help="output directory (created if needed)")
    rf.add_argument("--seed", type=int, default=0, help="seed of the random inputs (tests/golden: 0)")
    return ap


def live_echo(stream):
    """echo for `train`: on a terminal the progress lines ("step …") overwrite one live line and every other
    message starts a line of its own; elsewhere (a file, a pipe) every message is a line."""
    live = [False]

    def echo(text):
        if not stream.isatty():
            if text:
                print(text, file=stream, flush=True)
            return
        if text.startswith("step "):
            stream.write("\r" + text + "\x1b[K")
            live[0] = True
        else:
            stream.write(("\n" if live[0] else "") + (text + "\n" if text else ""))
            live[0] = False
        stream.flush()
    return echo


def cmd_train(args):
    from .allocator import keep_freed_memory
    from .config import TrainConfig, refuse_overridden
    from .train import train
    keep_freed_memory()                        # fewer page faults per update, same numbers (xiref/allocator.py)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    refuse_overridden(cfg, getattr(args, "given", set()))
    echo = (lambda *_: None) if args.quiet else live_echo(sys.stdout)
    summary = train(cfg, resume=args.resume, overwrite=args.overwrite, echo=echo)
    echo("")
    keys = ("env", "method", "steps", "seed", "eval_return", "final_return", "params", "params_initial",
            "ofenet_params", "ofenet_params_initial", "macs", "macs_initial", "alive_units", "seconds",
            "steps_per_second")
    print(json.dumps({k: summary[k] for k in keys}))


def cmd_plot(args):
    from .plot import plot_runs
    for path in plot_runs(args.runs, args.out):
        print(f"wrote {path}")


def cmd_export(args):
    from .export import export_run
    print(f"wrote {export_run(args.run, args.out)}")


def cmd_reference(args):
    from .reference import write
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    print(f"wrote {write(args.out, args.seed)}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        # NaN/inf are detected and reported by the commands themselves, in one line; numpy's
        # RuntimeWarnings would only add multi-line noise to stderr before it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            {"train": cmd_train, "plot": cmd_plot, "export": cmd_export,
             "reference": cmd_reference}[args.command](args)
    except UserError as exc:
        print(f"xiref: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output, full disk …: still one line, nothing half-written (temp + rename)
        where = f"cannot write {exc.filename}: " if exc.filename else ""
        print(f"xiref: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xiref: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum, frame):
    """SIGTERM (kill, a batch system's time limit) stops like Ctrl-C: the run's lock is released, temp files
    are never renamed into place, and the last checkpoint stays the one to resume from."""
    raise KeyboardInterrupt
