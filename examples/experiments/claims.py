"""The paper's two claims (README "Results") as verdicts over finished runs' summaries (one env at a time, then over envs).

* claim 1: XiNet removes ≥ 50 % of OFENet's parameters and keeps ≥ 95 % of the ofe return (means over seeds);
* claim 2: the XiNet return is ≥ the ofe-small return (means over seeds).

A verdict compares means, as the claims are stated. Beside it stands the margin that decides it (x̄ − 0.95·ō for
claim 1's return, x̄ − s̄ for claim 2) with its standard error over seeds, and a warning when the margin is
within RESOLVED_SE standard errors: a verdict that the seeds do not resolve is reported as such, with the seed
count per side that would resolve it if the margin and the spreads stayed as measured. Two standard
errors is a loose yardstick with 3–5 seeds (a two-sided 95 % Student interval needs ≈ 2.3–4.3 of them at the
2–8 degrees of freedom such comparisons have); "within" is a warning, "beyond" not a proof.

`finished` is {method: [summary.json dicts]} of one env. The XiNet and ofe-small runs are the methods `xinet`
and `ofe-small` by default; a campaign variant (examples/experiments/campaign.py VARIANTS) is tested by naming it.
"""
import math

import numpy as np

REMOVED_MIN = 0.50       # claim 1: fraction of OFENet parameters xinet must remove
RETURN_MIN = 0.95        # claim 1: fraction of the ofe return xinet must keep
CLAIM1 = "XiNet removes ≥ 50 % of OFENet's parameters and keeps ≥ 95 % of the `ofe` mean final return"
CLAIM2 = "the `xinet` mean final return is ≥ the `ofe-small` one"
RESOLVED_SE = 2.0        # a verdict's margin counts as resolved by the seeds when |margin| ≥ this many standard errors


def values(summaries, key):
    """The non-missing values of `key` over runs, as floats."""
    return [float(s[key]) for s in summaries if s.get(key) is not None]


def mean_std(vals):
    """(mean, std over seeds, n); (None, None, 0) for no values."""
    v = np.array(vals, dtype=float)
    return (float(v.mean()), float(v.std()), len(v)) if len(v) else (None, None, 0)


def fmt_ms(vals, fmt="{:.0f}"):
    m, s, n = mean_std(vals)
    return f"{fmt.format(m)} ± {fmt.format(s)}" if n else "–"


def sample_variances(a, b):
    """(s_a², s_b²): the two sides' sample variances over seeds (ddof = 1); None when either has < 2 seeds."""
    if len(a) < 2 or len(b) < 2:
        return None
    return float(np.var(a, ddof=1)), float(np.var(b, ddof=1))


def margin_se(a, b, k=1.0):
    """Standard error of mean(a) − k·mean(b) over independent seeds, √(s_a²/n_a + k² s_b²/n_b) with the sample
    variances (Welch); None when either side has fewer than two seeds."""
    v = sample_variances(a, b)
    return None if v is None else float(np.sqrt(v[0] / len(a) + k * k * v[1] / len(b)))


def seeds_to_resolve(a, b, margin, k=1.0):
    """Seeds per side at which |margin| would reach RESOLVED_SE standard errors if the margin and the sample
    variances stayed as measured: n ≥ RESOLVED_SE² (s_a² + k² s_b²) / margin² (equal n on both sides, as
    margin_se's error falls like 1/√n). None for a zero margin or fewer than two seeds on a side."""
    v = sample_variances(a, b)
    if v is None or margin == 0:
        return None
    return max(2, math.ceil(RESOLVED_SE ** 2 * (v[0] + k * k * v[1]) / margin ** 2))


def _resolution(name, a, b, k=1.0):
    """(margin, text, flag) of mean(a) − k·mean(b): the margin with its standard error, and a warning when the
    seeds do not resolve its sign, with the seed count that would at these spreads."""
    margin = float(np.mean(a) - k * np.mean(b))
    se = margin_se(a, b, k)
    if se is None:
        return margin, f"{name} {margin:+.0f} (standard error needs ≥ 2 seeds per side)", None
    text = f"{name} {margin:+.0f}, standard error {se:.0f}"
    if abs(margin) < RESOLVED_SE * se:
        n = seeds_to_resolve(a, b, margin, k)
        more = f"; at these spreads ≈ {n} seeds per side would resolve it" if n else ""
        return margin, text, (f"{name} {margin:+.0f} is within {RESOLVED_SE:g} standard errors ({se:.0f}): "
                              f"these seeds do not resolve its sign{more}")
    return margin, text, None


def steps_text(summaries):
    return "/".join(str(s) for s in sorted({int(x["steps"]) for x in summaries}))


def _return_text(finished, method):
    m, s, n = mean_std(values(finished.get(method, []), "final_return"))
    return f"{method} {m:.0f} ± {s:.0f} ({n} seed{'s' * (n != 1)})"


def _missing(finished, methods):
    return [m for m in methods if not values(finished.get(m, []), "final_return")]


def _steps_flag(finished, methods):
    """A warning when the compared runs were trained for different numbers of steps, else None."""
    steps = {m: steps_text(finished[m]) for m in methods if finished.get(m)}
    if len({int(x["steps"]) for m in steps for x in finished[m]}) > 1:
        return "steps differ between the runs compared: " + ", ".join(f"{m} {t}" for m, t in steps.items())
    return None


def _seeds_flag(finished, methods):
    """A warning when the compared methods were run on different seed sets (a partial comparison), else None."""
    seeds = {m: sorted({int(x["seed"]) for x in finished[m]}) for m in methods if finished.get(m)}
    if len({tuple(v) for v in seeds.values()}) > 1:
        return "seeds differ between the runs compared (a provisional verdict): " + ", ".join(
            f"{m} {','.join(map(str, v))}" for m, v in seeds.items())
    return None


def _flags(finished, methods):
    return [f for f in (_steps_flag(finished, methods), _seeds_flag(finished, methods)) if f]


def claim1(finished, xinet="xinet"):
    """Claim 1 on one env from {method: [summaries]} for the XiNet runs named `xinet`: dict(verdict, numbers,
    flags, removed, ratio)."""
    xi, ofe = finished.get(xinet, []), finished.get("ofe", [])
    numbers, flags, removed, ratio = [], [], None, None
    missing = _missing(finished, ("ofe", xinet))
    final = values(xi, "ofenet_params")
    initial = values(xi, "ofenet_params_initial")
    # the unpruned OFENet: xinet's own at step 0, else (older summaries) the ofe runs'
    own = bool(initial) and len(initial) == len(xi)
    reference, source = (initial, f"{xinet} at start") if own else (values(ofe, "ofenet_params"), "ofe")
    if final and reference and np.mean(reference) > 0:
        removed = 1.0 - np.mean(final) / np.mean(reference)
        numbers.append(f"OFENet parameters removed {100 * removed:.1f} % ({np.mean(reference):.0f} ({source}) → "
                       f"{fmt_ms(final)} ({xinet}, {len(final)} seed{'s' * (len(final) != 1)}))")
        ofe_sizes = values(ofe, "ofenet_params")
        if ofe_sizes and own and abs(np.mean(ofe_sizes) - np.mean(initial)) > 0.5:
            flags.append(f"OFENet sizes differ: {xinet} started with {np.mean(initial):.0f}, "
                         f"ofe has {np.mean(ofe_sizes):.0f} parameters")
    if not missing:
        xr, orr = values(xi, "final_return"), values(ofe, "final_return")
        x, o = np.mean(xr), np.mean(orr)
        if o > 0:
            ratio = x / o
            numbers.append(f"final return {_return_text(finished, xinet)} / {_return_text(finished, 'ofe')} "
                           f"= {100 * ratio:.1f} %")
            # the return condition holds iff x̄ − 0.95·ō ≥ 0; how far, in standard errors, says what the seeds show
            _, text, flag = _resolution(f"margin {xinet} − {RETURN_MIN:g}·ofe", xr, orr, RETURN_MIN)
            numbers.append(text)
            # warned only where the return decides the verdict: with < 50 % removed it is not met either way
            flags += [flag] if flag and removed is not None and removed >= REMOVED_MIN else []
        else:
            numbers.append(f"final return {_return_text(finished, xinet)}, {_return_text(finished, 'ofe')}")
    flags += _flags(finished, ("ofe", xinet))
    if missing:
        verdict = f"not yet measured (missing: {', '.join(missing)})"
    elif removed is None:
        verdict = "not yet measured (missing: OFENet parameter counts)"
    elif ratio is None:
        verdict = "not yet measured (ofe mean final return ≤ 0: the 95 % ratio is undefined)"
    else:
        verdict = "met" if removed >= REMOVED_MIN and ratio >= RETURN_MIN else "not met"
    return {"verdict": verdict, "numbers": numbers, "flags": flags, "removed": removed, "ratio": ratio}


def claim2(finished, xinet="xinet", small="ofe-small"):
    """Claim 2 on one env from {method: [summaries]}, the XiNet runs `xinet` against the ofe-small runs `small`
    (an ungated OFENet at their final widths): dict(verdict, numbers, flags, difference)."""
    methods = (xinet, small)
    missing = _missing(finished, methods)
    present = [m for m in methods if m not in missing]
    numbers = [", ".join(_return_text(finished, m) for m in present)] if present else []
    flags = _flags(finished, methods)
    if missing:
        return {"verdict": f"not yet measured (missing: {', '.join(missing)})", "numbers": numbers,
                "flags": flags, "difference": None}
    a, b = values(finished[xinet], "final_return"), values(finished[small], "final_return")
    diff, text, flag = _resolution("difference", a, b)
    numbers = [f"{_return_text(finished, xinet)} vs {_return_text(finished, small)}, {text}"]
    flags += [flag] if flag else []
    return {"verdict": "met" if diff >= 0 else "not met", "numbers": numbers, "flags": flags,
            "difference": float(diff)}


def claim_lines(number, text, claim):
    """One Markdown bullet: claim, verdict, numbers, warnings."""
    line = f"- **Claim {number}** ({text}): **{claim['verdict']}**"
    if claim["numbers"]:
        line += " — " + "; ".join(claim["numbers"])
    return [line] + [f"  - ⚠ {f}" for f in claim["flags"]]


def overall(per_env):
    """Verdict over all envs from {env: claim dict}: not met on any env ⇒ not met; met on every env ⇒ met."""
    if not per_env:
        return "not yet measured (no runs)"
    bad = [e for e, c in per_env.items() if c["verdict"] == "not met"]
    open_ = [f"{e} — {c['verdict'][len('not yet measured ('):-1]}" for e, c in per_env.items()
             if c["verdict"].startswith("not yet measured")]
    if bad:
        return f"not met (on {', '.join(bad)})"
    if open_:
        return f"not yet measured ({'; '.join(open_)})"
    return "met"
