"""xiref/plot.py: which curve a run belongs to, and a figure from campaign-layout runs of a method and a variant
of it (examples/campaign.py VARIANTS) — the two must stay separate curves although both are `--method xinet`."""
import json
import os

import pytest

from xiref import plot as P


def fake_run(path, method="xinet", env="Hopper-v5", gated=True, steps=3000):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"env": env, "method": method, "gated": gated, "eval_every": 1000, "steps": steps}, f)
    with open(os.path.join(path, "progress.csv"), "w") as f:
        f.write("step,eval_return,params,alive:ofenet/s1\n")
        for k in range(1, steps // 1000 + 1):
            f.write(f"{k * 1000},{10.0 * k},{1000 - k},{40 - k}\n")
    return str(path)


@pytest.mark.parametrize("rel, want", [
    ("Hopper-v5/xinet/seed0", "xinet"),
    ("Hopper-v5/xinet-ofenet-only/seed12", "xinet-ofenet-only"),
    ("runs/quickstart", "xinet"),                       # not the campaign layout: the method
    ("Hopper-v5/xinet/seedling", "xinet"),
    ("Walker2d-v5/variant/seed0", "xinet"),             # the env in the path must be the run's
])
def test_group_label(tmp_path, rel, want):
    assert P.group_label(str(tmp_path / rel), {"env": "Hopper-v5", "method": "xinet"}) == want


def test_method_and_variant_make_separate_curves(tmp_path, monkeypatch):
    dirs = [fake_run(tmp_path / "Hopper-v5" / name / f"seed{s}") for name in ("xinet", "xinet-ofenet-only")
            for s in (0, 1)]
    dirs.append(fake_run(tmp_path / "Hopper-v5" / "sac" / "seed0", method="sac", gated=False))
    labels = []
    import matplotlib.axes
    real_plot = matplotlib.axes.Axes.plot

    def spy(self, *args, label=None, **kw):
        labels.append(label)
        return real_plot(self, *args, label=label, **kw)
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    out = tmp_path / "curves.png"
    assert P.plot_runs(dirs, str(out)) == [str(out)] and out.stat().st_size > 0
    curves = {lab for lab in labels if lab and lab.startswith("Hopper-v5 ")}
    assert curves == {"Hopper-v5 xinet (n=2)", "Hopper-v5 xinet-ofenet-only (n=2)", "Hopper-v5 sac (n=1)"}


@pytest.mark.parametrize("n_runs", [1, 2])
def test_a_single_run_is_titled_as_one_run(n_runs, tmp_path, monkeypatch):
    dirs = [fake_run(tmp_path / "Hopper-v5" / "xinet" / f"seed{s}") for s in range(n_runs)]
    titles = []
    import matplotlib.axes
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **kw: (titles.append(text), real(self, text, *a, **kw))[1])
    P.plot_runs(dirs, str(tmp_path / "c.png"))
    over_seeds = [t for t in titles if "over seeds" in t or "first run" in t]
    assert (over_seeds == []) if n_runs == 1 else len(over_seeds) == 2, titles
