"""A training run's configuration: every flag, its validation, and what a method implies (docs/METHOD.md §8).

Every field of TrainConfig (and of AgentConfig, which it extends) is a `xiref train` flag. `validate` checks
every setting (type, finite, in range) before anything is created or deleted; `normalize_config` checks a
configuration read back from a file (config.json, a checkpoint's header) field by field with the same rules.
"""
import math
import os
from dataclasses import asdict, dataclass, fields

from .agent import AGENT_CHOICES, SHARED_KNOBS, AgentConfig
from .errors import UserError

METHODS = ("sac", "ofe", "xinet", "ofe-small")
DTYPES = ("float64", "float32")          # float64 the reference dtype, float32 the fast path


@dataclass
class TrainConfig(AgentConfig):
    """A run: environment, method, budget and schedule, plus every AgentConfig field."""
    env: str = "InvertedPendulum-v5"   # gymnasium id (MuJoCo v5 tasks)
    method: str = "xinet"              # sac | ofe | xinet | ofe-small
    steps: int = 30000                 # environment steps
    seed: int = 0                      # seed of env, action space and the agent's generator
    out: str = "runs/default"          # run directory
    batch: int = 256                   # minibatch size (SAC and OFENet)
    buffer_size: int = 1_000_000       # replay capacity
    start_steps: int = 5000            # uniformly random steps before learning starts
    ofe_pretrain_steps: int = 10000    # OFENet updates on the random data before SAC starts
    theta_delay_ofenet: int = 0        # extra steps after pre-training before OFENet's θ moves
    theta_delay_sac: int = 5000        # steps after learning starts before the SAC nets' θ move
    eval_every: int = 5000             # evaluation period in steps
    eval_episodes: int = 5             # episodes per evaluation
    log_every: int = 1000              # progress period in steps
    checkpoint_every: int = 10000      # checkpoint period in steps
    widths_from: str = ""              # ofe-small: XiNet run directory whose final OFENet widths to use
    dtype: str = "float32"             # float32 (fast path, default for runs) or float64 (reference dtype)


# ---------------------------------------------------------------------- what each field may hold
KINDS = {bool: "bool", int: "int", float: "float", float | None: "knob", str: "str", tuple: "ints"}
KIND_TEXT = {"bool": "0 or 1", "int": "an integer", "float": "a finite number", "knob": "a finite number or none",
             "str": "a string", "ints": "a list of integers"}
FIELD_KINDS = {f.name: KINDS[f.type] for f in fields(TrainConfig)}
KNOB_FIELDS = tuple(SHARED_KNOBS)        # beta_ofenet, …, eps_xi_critic: None means "use the shared value"


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def of_kind(value, kind):
    """True when `value` is a valid Python value of field kind `kind` (floats finite)."""
    if kind == "knob" and value is None:
        return True
    if kind in ("float", "knob"):
        return _number(value) and math.isfinite(value)
    if kind == "ints":
        return isinstance(value, tuple) and all(_integer(x) for x in value)
    return {"bool": isinstance(value, bool), "int": _integer(value), "str": isinstance(value, str)}[kind]


def _interval(low, high, closed_low, closed_high):
    text = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
    return (lambda v: (low <= v if closed_low else low < v) and (v <= high if closed_high else v < high)), \
        f"lie in {text}"


POSITIVE = (lambda v: v > 0), "positive"
NON_NEGATIVE = (lambda v: v >= 0), ">= 0"
RULES = {   # field (or shared knob, for its per-network fields too) -> (test, what it must be)
    **dict.fromkeys(("steps", "batch", "buffer_size", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                     "ofe_layers", "ofe_units", "lr_actor", "lr_critic", "lr_alpha", "lr_ofenet", "init_alpha",
                     "eta_theta", "eps_bn"), POSITIVE),
    **dict.fromkeys(("seed", "start_steps", "ofe_pretrain_steps", "theta_delay_ofenet", "theta_delay_sac",
                     "target_dim", "beta", "lam_w", "k_theta"), NON_NEGATIVE),
    "eps_xi": _interval(0, 0.5, False, False),
    **dict.fromkeys(("gamma", "tau", "loss_scale_rate"), _interval(0, 1, False, True)),
    **dict.fromkeys(("mu_theta", "bn_momentum"), _interval(0, 1, True, False)),
    "hidden": ((lambda v: all(h > 0 for h in v)), "positive widths"),
    "ofe_widths": ((lambda v: all(w >= 0 for w in v)), "widths >= 0"),
}
CHOICES = {"method": METHODS, "dtype": DTYPES, **AGENT_CHOICES}


def flag(name):
    return "--" + name.replace("_", "-")


def _shown(value):
    text = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value) if isinstance(value, str) else \
        str(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _shared(name):
    """The shared knob a per-network field overrides (`beta_actor` -> `beta`), else None."""
    return name.rsplit("_", 1)[0] if name in KNOB_FIELDS else None


def field_problem(name, value, label=None, choices=True):
    """Why `value` cannot be setting `name`, in one phrase that begins with `label` (default: its --flag); None
    when it can. choices=False: a method, dtype or baseline outside today's lists passes (a file may name a
    variant or another version's choice; what runs it is checked again by `validate`)."""
    label, kind = label or flag(name), FIELD_KINDS[name]
    if not of_kind(value, kind):
        return f"{label} must be {KIND_TEXT[kind]}, got {_shown(value)}"
    if choices and name in CHOICES and value not in CHOICES[name]:
        return f"unknown {label.lstrip('-')} {value!r}; choose one of {', '.join(CHOICES[name])}"
    test, text = RULES.get(_shared(name) or name, (None, None))
    if test is None or value is None or test(value):
        return None
    unset = f" (or none: use {flag(_shared(name))})" if _shared(name) else ""
    return f"{label} must be {text}{unset}, got {_shown(value)}"


# ---------------------------------------------------------------------- a whole configuration
def method_switches(method):
    """The AgentConfig switches a method sets: {"ofenet": …, "gated": …}."""
    return {"ofenet": method != "sac", "gated": method == "xinet"}


def switch_contradiction(name, value, method):
    return (f"--{name} {int(value)} contradicts --method {method}, which sets --{name} "
            f"{int(method_switches(method)[name])}; drop --{name}")


def _cross_problems(cfg):
    """(broken, message) of the rules that relate several settings."""
    switches = method_switches(cfg.method)
    n_widths = 2 * cfg.ofe_layers
    yield cfg.buffer_size < cfg.batch, f"--batch {cfg.batch} is larger than --buffer-size {cfg.buffer_size}"
    yield cfg.start_steps < cfg.batch, f"--start-steps {cfg.start_steps} must be >= --batch {cfg.batch}"
    yield bool(cfg.ofe_widths) and len(cfg.ofe_widths) != n_widths, \
        f"--ofe-widths needs 2 × --ofe-layers = {n_widths} widths >= 0, got {_shown(cfg.ofe_widths)}"
    yield cfg.method == "ofe-small" and not cfg.widths_from, "--method ofe-small needs --widths-from RUN_DIR"
    yield bool(cfg.widths_from) and cfg.method != "ofe-small", \
        f"--widths-from is read only by --method ofe-small, not --method {cfg.method}; drop --widths-from"
    yield bool(cfg.ofe_widths) and cfg.method == "sac", "--ofe-widths: --method sac has no OFENet; drop --ofe-widths"
    for name in ("ofenet", "gated"):
        yield getattr(cfg, name) and not switches[name], switch_contradiction(name, True, cfg.method)
    yield cfg.k_theta > 0 and cfg.mu_theta == 0, \
        f"--k-theta {cfg.k_theta} needs --mu-theta > 0: an average of one draw has no standard error (Eq. 38)"


def validate(cfg):
    """One clear message for the first impossible setting: every field's type, finiteness and range first (a
    NaN passes `x > 0` checks written as `not x <= 0`, so finiteness is tested on its own), then the rules
    that relate several settings."""
    for f in fields(cfg):
        problem = field_problem(f.name, getattr(cfg, f.name))
        if problem:
            raise UserError(problem)
    for broken, message in _cross_problems(cfg):
        if broken:
            raise UserError(message)


def refuse_overridden(cfg, given):
    """Flags in `given` (those the user typed) that the method would override: refused, not ignored."""
    for name, implied in method_switches(cfg.method).items():
        if name in given and getattr(cfg, name) != implied:
            raise UserError(switch_contradiction(name, getattr(cfg, name), cfg.method))
    if "ofe_widths" in given and cfg.method == "ofe-small":
        raise UserError("--ofe-widths contradicts --method ofe-small, which takes its widths from --widths-from; "
                        "drop --ofe-widths")


def resolve_method(cfg):
    """Set the AgentConfig switches that a method implies (ofe-small: the widths of its --widths-from run, unless
    the configuration already holds them, as one read back from a run does)."""
    switches = method_switches(cfg.method)
    cfg.ofenet, cfg.gated = switches["ofenet"], switches["gated"]
    if cfg.method == "ofe-small" and not cfg.ofe_widths:
        from .readers import final_ofenet_widths
        cfg.ofe_widths = tuple(final_ofenet_widths(cfg.widths_from, cfg.ofe_layers))
    return cfg


# ---------------------------------------------------------------------- configurations read back from files
def _from_json(name, value):
    """A JSON value as the field's Python value: lists to tuples, numbers to floats, a knob's −1 (the unset
    value before None) to None."""
    kind = FIELD_KINDS[name]
    if kind == "ints" and isinstance(value, list):
        return tuple(value)
    if kind == "knob" and _number(value) and value == -1:
        return None
    if kind in ("float", "knob") and _number(value):
        return float(value)
    return value


def normalize_config(d, source):
    """The known fields of configuration dict `d` (read from `source`) as Python values, each checked like its
    flag; UserError naming `source` and the field otherwise. Unknown keys are dropped."""
    if not isinstance(d, dict):
        raise UserError(f"{source}: the configuration is {json_kind(d)}, not an object")
    out = {}
    for name in FIELD_KINDS:
        if name in d:
            out[name] = _from_json(name, d[name])
            problem = field_problem(name, out[name], label=name, choices=False)
            if problem:
                raise UserError(f"{source}: {problem}")
    return out


# fields a configuration written before they existed lacks, with the value its run had
BEFORE_FIELDS = {"k_theta": 0.0, "ofenet_value": "own", "theta_scale": "none", "expected_gates": "theta"}


def config_from_dict(d, source="configuration"):
    """TrainConfig of a configuration read back; a field it lacks (written before the field existed) has the value
    its run had: a per-network knob unset, the BEFORE_FIELDS (the plain θ-step (32), `own`, `none`, `theta`) as listed."""
    return TrainConfig(**{**SHARED_KNOBS, **BEFORE_FIELDS, **normalize_config(d, source)})


def portable_config(cfg):
    """The configuration a run directory stores: every field, `out` relative to the directory itself ("."), so a
    moved or copied run carries no path of the machine it was made on."""
    return dict(asdict(cfg), out=".")


def json_kind(value):
    """'an array', 'a string', … for a JSON value (messages about files of the wrong shape)."""
    return {dict: "an object", list: "an array", str: "a string", bool: "true or false",
            type(None): "null"}.get(type(value), "a number")


# ---------------------------------------------------------------------- memory a run needs
BYTES_PER_PARAM = 6       # weights, Adam m and v, gradient, target copy and temporaries
BYTES_PER_ACTIVATION = 12  # forward caches and backward buffers of the passes of one update, per unit and example


def _param_and_unit_counts(cfg, obs_dim, act_dim):
    from . import wiring as W
    ofe = None
    if cfg.ofenet:
        ofe = dict(n_layers=cfg.ofe_layers, units=cfg.ofe_units, widths=tuple(cfg.ofe_widths) or None,
                   target_dim=cfg.target_dim or obs_dim)
    wr = W.agent_wiring(obs_dim, act_dim, cfg.hidden, ofe, gated=cfg.gated)
    width = {**wr.free_widths, **{s.name: s.n_out for s in wr.layers}}
    params = sum((sum(width[src] for src in s.inputs) + (5 if s.bn else 1)) * s.n_out for s in wr.layers)
    return params, sum(s.n_out for s in wr.layers)


def memory_needed(cfg, obs_dim, act_dim):
    """{part: bytes} a run allocates: the replay buffer, the networks with their optimiser state, one update's
    activations (an estimate, within a small factor)."""
    itemsize = 8 if cfg.dtype == "float64" else 4
    params, units = _param_and_unit_counts(cfg, obs_dim, act_dim)
    return {"replay buffer": cfg.buffer_size * (2 * obs_dim + act_dim + 2) * itemsize,
            "networks with Adam state": params * BYTES_PER_PARAM * itemsize,
            "activations": cfg.batch * units * BYTES_PER_ACTIVATION * itemsize}


def available_memory():
    """Bytes of memory available now (/proc/meminfo MemAvailable, else free physical pages), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


LOWER = {"replay buffer": "--buffer-size", "networks with Adam state": "--hidden or --ofe-units",
         "activations": "--batch or --hidden"}


def check_memory(cfg, obs_dim, act_dim, available=None):
    """UserError, with the estimate, when the run would need more memory than the machine has available."""
    parts = memory_needed(cfg, obs_dim, act_dim)
    available = available_memory() if available is None else available
    total = sum(parts.values())
    if available is None or total <= available:
        return
    largest = max(parts, key=parts.get)
    detail = ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items())
    raise UserError(f"this run needs about {human_bytes(total)} of memory ({detail}), more than the "
                    f"{human_bytes(available)} available; lower {LOWER[largest]}")
