"""A compact PyTorch implementation of xiref's components, validated against the golden vectors.

    python examples/validate_torch.py [--golden DIR] [--rtol 1e-10]

Every component of the golden directory (default tests/golden; write your own with `python -m xiref
reference --out DIR`) is recomputed here in float64 PyTorch — the gated DenseNet and OFENet, the gate
estimators, the cost and the SAC losses — with torch.autograd for every gradient (no hand-written
backward), and compared key by key with xiref.gradcheck.compare. Prints one row per component and exits
with 0 when every component agrees to ≤ rtol relative error, 1 otherwise. Without torch it prints that it
skipped and exits with 0.

Two details matter at 1e-10 and are spelled out in docs/REFERENCE.md: softplus is torch.logaddexp(0, x)
(torch.nn.functional.softplus switches to x above 20), and the actor's min(q1, q2) sends the gradient to
critic 1 on ties (torch.minimum would split it).
"""
import argparse
import itertools
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from xiref import gradcheck  # noqa: E402

DIFFERENTIATED = ("input", "param")


def build_impls(torch):
    f64 = torch.float64

    def tensors(x, extra=()):
        """Stored arrays as float64 tensors; input/ and param/ (and `extra`) keys require gradients."""
        return {k: torch.tensor(v, dtype=f64, requires_grad=k.split("/")[0] in DIFFERENTIATED or k in extra)
                for k, v in x.items() if k != "config"}

    def autograd(t, outputs, loss):
        """outputs + loss + grad/<name> of every tensor that requires a gradient (0 where unused)."""
        leaves = [k for k, v in t.items() if v.requires_grad]
        grads = torch.autograd.grad(loss, [t[k] for k in leaves], allow_unused=True)
        res = {k: v.detach() for k, v in outputs.items()}
        res["loss"] = loss.detach()
        for k, g in zip(leaves, grads):
            res["grad/" + k.split("/", 1)[1]] = torch.zeros_like(t[k]) if g is None else g
        return res

    # ------------------------------------------------------------------ layers, Eq. (1), (2), (2′)
    def bn_train(u, s, c, eps):
        mu = u.mean(0)
        var = ((u - mu) ** 2).mean(0)                      # biased batch variance
        return s * (u - mu) / torch.sqrt(var + eps) + c, mu, var

    def swish(u):
        return u * torch.sigmoid(u)

    ACT = {"swish": swish, "relu": torch.relu, "linear": lambda u: u}

    def gated_net(t, layers, sources, eps_bn):
        """Any gated DenseNet/MLP from a layer list: cat(inputs) W + b → BN → φ → ξ ⊙ ·.
        Eq. (1)–(2′), (5)–(7)"""
        acts = dict(sources)
        for lay in layers:
            n = lay["name"]
            u = torch.cat([acts[s] for s in lay["inputs"]], dim=1) @ t[f"param/{n}/W"] + t[f"param/{n}/b"]
            if lay["bn"]:
                u = bn_train(u, t[f"param/{n}/s"], t[f"param/{n}/c"], eps_bn)[0]
            y = ACT[lay["act"]](u)
            acts[n] = t[f"mask/{n}"] * y if lay["gated"] else y
        return acts

    def dense(x):
        t = tensors(x)
        u = t["input/h"] @ t["param/W"] + t["param/b"]
        return autograd(t, {"output/u": u}, (u * t["cot/u"]).sum())

    def batchnorm(x):
        t = tensors(x)
        y, mu, var = bn_train(t["input/u"], t["param/s"], t["param/c"], float(x["const/eps_bn"]))
        return autograd(t, {"output/y": y, "output/mean": mu, "output/var": var}, (y * t["cot/y"]).sum())

    def swish_c(x):
        t = tensors(x)
        y = swish(t["input/u"])
        return autograd(t, {"output/y": y}, (y * t["cot/y"]).sum())

    def gated_layer(x):
        t = tensors(x, extra=("mask/xi",))                 # ∂loss/∂ξ too (first-order estimator, Eq. 25)
        y = t["mask/xi"] * torch.relu(t["input/h"] @ t["param/W"] + t["param/b"])
        return autograd(t, {"output/y": y}, (y * t["cot/y"]).sum())

    def densenet_block(x):
        t, cfg = tensors(x), x["config"]
        acts = gated_net(t, cfg["layers"], {"x": t["input/x"]}, float(x["const/eps_bn"]))
        z = torch.cat([acts[s] for s in cfg["output"]], dim=1)
        return autograd(t, {"output/z": z}, (z * t["cot/z"]).sum())

    # ------------------------------------------------------------------ OFENet, Eq. (7)–(8)
    def aux(o_hat, o_next):
        T = o_hat.shape[1]
        return ((o_hat - o_next[:, :T]) ** 2).sum(1) / T

    def ofenet_aux_loss(x):
        t = tensors(x)
        ell = aux(t["input/o_hat"], t["data/o_next"])
        return autograd(t, {"output/ell": ell}, ell.mean())

    def ofenet(x):
        t, layers = tensors(x), x["config"]["layers"]
        acts = gated_net(t, layers, {"obs": t["input/obs"], "act": t["input/act"]}, float(x["const/eps_bn"]))
        head = layers[-1]
        ell = aux(acts[head["name"]], t["data/o_next"])
        z_oa = torch.cat([acts[s] for s in head["inputs"]], dim=1)
        return autograd(t, {"output/z_oa": z_oa, "output/o_hat": acts[head["name"]], "output/ell": ell}, ell.mean())

    # ------------------------------------------------------------------ gate estimators, Eq. (4), (22)–(24)
    def score_surrogate(theta_t, xi, weight):
        """(1/B) Σ_ij weight_i log q(ξ_ij; θ̃_j): its θ̃-gradient is the score-function estimate (22)."""
        return (weight[:, None] * (xi * torch.log(theta_t) + (1 - xi) * torch.log(1 - theta_t))).sum() / xi.shape[0]

    def theta_tilde(x):
        eps = float(x["const/eps_xi"])
        return torch.tensor(x["param/theta"], dtype=f64).clamp(eps, 1 - eps).requires_grad_(True)

    def score(x, baseline):
        tt = theta_tilde(x)
        ell = torch.tensor(x["data/ell"], dtype=f64)
        xi = torch.tensor(x["mask/xi"], dtype=f64)
        B = ell.shape[0]
        b = torch.zeros_like(ell) if baseline == "none" else (ell.sum() - ell) / (B - 1)     # Eq. (23)
        g, = torch.autograd.grad(score_surrogate(tt, xi, ell - b), tt)
        sc = (xi - tt) / (tt * (1 - tt))
        return {"output/theta_tilde": tt.detach(), "output/score": sc.detach(), "loss": ell.mean(), "grad/theta": g}

    def score_pair(x):
        tt = theta_tilde(x)
        e1, e2 = (torch.tensor(x[k], dtype=f64) for k in ("data/ell1", "data/ell2"))
        x1, x2 = (torch.tensor(x[k], dtype=f64) for k in ("mask/xi1", "mask/xi2"))
        sur = 0.5 * (score_surrogate(tt, x1, e1 - e2) + score_surrogate(tt, x2, e2 - e1))
        g, = torch.autograd.grad(sur, tt)
        sc = [((m - tt) / (tt * (1 - tt))).detach() for m in (x1, x2)]
        return {"output/theta_tilde": tt.detach(), "output/score1": sc[0], "output/score2": sc[1],
                "loss": 0.5 * (e1.mean() + e2.mean()), "grad/theta": g}

    def exact_grad(x):
        t, layers, units = tensors(x), x["config"]["layers"], x["config"]["theta_units"]
        theta = t["param/theta"]                           # raw θ (not θ̃), gated layers concatenated in order
        n = theta.shape[0]
        masks = torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=f64)
        q = torch.prod(masks * theta + (1 - masks) * (1 - theta), dim=1)
        ells = []
        for m in masks:                                    # one mask ξ shared by the whole batch
            for (name, _), part in zip(units, torch.split(m, [k for _, k in units])):
                t[f"mask/{name}"] = part
            out = gated_net(t, layers, {"h": t["input/h"]}, 0.0)[layers[-1]["name"]][:, 0]
            ells.append(((out - t["data/y"]) ** 2).mean())
        ell = torch.stack(ells)
        for name, _ in units:
            del t[f"mask/{name}"]
        return autograd(t, {"output/masks": masks, "output/q": q, "output/ell": ell}, (q * ell).sum())   # Eq. (24)

    # ------------------------------------------------------------------ cost, Eq. (26)–(30)
    def cost(x):
        t, wiring = tensors(x), x["config"]["wiring"]
        free = dict(wiring["free"])
        by_name = {lay["name"]: lay for lay in wiring["layers"]}

        def total(theta):
            def width(src):                                # n̄ of a source, Eq. (26)
                if src in free:
                    return free[src]
                lay = by_name[src]
                return theta[src].sum() if lay["gated"] else lay["n_out"]
            C, macs = 0.0, 0.0
            for lay in wiring["layers"]:
                n_in, n_out = sum(width(s) for s in lay["inputs"]), width(lay["name"])
                C = C + n_in * n_out + n_out + (2 * n_out if lay["bn"] else 0)          # Eq. (27)–(28)
                macs = macs + n_in * n_out                                            # Eq. (30)
            return C, macs

        theta = {k[len("param/theta/"):]: v for k, v in t.items()}
        C, macs = total(theta)
        ones = {k: torch.ones_like(v) for k, v in theta.items()}
        return autograd(t, {"output/cost_ones": total(ones)[0], "output/macs": macs}, C)

    # ------------------------------------------------------------------ SAC, Eq. (9)–(13)
    def tanh_gaussian(x):
        t = tensors(x)
        A = t["noise/eps"].shape[1]
        mu, lam = t["input/out"][:, :A], t["input/out"][:, A:]
        log_std = -5.0 + 3.5 * (torch.tanh(lam) + 1.0)
        xs = mu + torch.exp(log_std) * t["noise/eps"]
        a = torch.tanh(xs)
        zero = torch.zeros((), dtype=f64)
        log_jac = 2.0 * (math.log(2.0) - xs - torch.logaddexp(zero, -2.0 * xs))     # log(1 − tanh² x)
        log_pi = (-0.5 * t["noise/eps"] ** 2 - log_std - 0.5 * math.log(2 * math.pi) - log_jac
                  - t["const/log_scale"]).sum(1)                                     # Eq. (9)
        return autograd(t, {"output/a": a, "output/log_pi": log_pi},
                        (a * t["cot/a"]).sum() + (log_pi * t["cot/log_pi"]).sum())

    def critic_loss(x):
        t = tensors(x)
        alpha, gamma = float(x["const/alpha"]), float(x["const/gamma"])
        y = (t["data/r"] + gamma * (1 - t["data/d"])
             * (torch.minimum(t["data/q1_next"], t["data/q2_next"]) - alpha * t["data/log_pi_next"])).detach()
        ell1, ell2 = (t["input/q1"] - y) ** 2, (t["input/q2"] - y) ** 2                 # Eq. (10)–(11)
        return autograd(t, {"output/y": y, "output/ell1": ell1, "output/ell2": ell2}, ell1.mean() + ell2.mean())

    def actor_loss(x):
        t = tensors(x)
        q1, q2 = t["input/q1"], t["input/q2"]
        ell = float(x["const/alpha"]) * t["input/log_pi"] - torch.where(q1 <= q2, q1, q2)   # Eq. (12)
        return autograd(t, {"output/ell": ell}, ell.mean())

    def alpha_loss(x):
        t = tensors(x)
        loss = -(t["param/log_alpha"] * (t["data/log_pi"] + float(x["const/target_entropy"]))).mean()  # Eq. (13)
        return autograd(t, {}, loss)

    def flip(x):
        t = tensors(x)
        xi, ell, slope = t["mask/xi"], t["data/ell"], t["data/slope"]
        u = t["data/u"].long()
        B, n = xi.shape
        rows = torch.arange(B)
        D = (2.0 * xi[rows, u] - 1.0) * (ell - t["data/ell_flip"])                                 # Eq. (33)
        onehot = torch.nn.functional.one_hot(u, n).to(xi.dtype)
        g = slope.mean(0) + (n / B) * ((D - slope[rows, u])[:, None] * onehot).sum(0)            # Eq. (34)
        return {"output/g_theta": g, "loss": ell.mean()}             # an estimate of given losses: no gradient

    return {"flip": flip, "dense": dense, "batchnorm": batchnorm, "swish": swish_c, "gated_layer": gated_layer,
            "densenet_block": densenet_block, "ofenet_aux_loss": ofenet_aux_loss, "ofenet": ofenet,
            "score_none": lambda x: score(x, "none"), "score_loo": lambda x: score(x, "loo"),
            "score_pair": score_pair, "exact_grad": exact_grad, "cost": cost, "tanh_gaussian": tanh_gaussian,
            "critic_loss": critic_loss, "actor_loss": actor_loss, "alpha_loss": alpha_loss,
            "exact_grad_deep": exact_grad, "tanh_gaussian_tails": tanh_gaussian, "critic_loss_ties": critic_loss,
            "actor_loss_ties": actor_loss}


def validate(torch, golden=None, rtol=1e-10, verbose=False):
    """One gradcheck Report per component of the golden directory."""
    impls = build_impls(torch)
    man = gradcheck.read_manifest(golden)
    reports = []
    for name in man["components"]:
        if name not in impls:
            rep = gradcheck.Report(name, rtol, [gradcheck.KeyResult("(no torch implementation)", "missing")])
        else:
            rep = gradcheck.compare(name, impls[name], golden, rtol=rtol, verbose=verbose)
        reports.append(rep)
    return reports, man


def table(reports, man):
    lines = [f"{'component':<20} {'equations':<16} {'keys':>4}  {'max rel err':>11}  {'worst key':<22} result",
             "-" * 86]
    for rep in reports:
        eqs = ",".join(man["components"][rep.component]["equations"])
        worst = rep.worst.key if rep.worst else "-"
        lines.append(f"{rep.component:<20} {eqs:<16} {len(rep.rows):>4}  {rep.max_rel_err:>11.2e}  {worst:<22} "
                     f"{'pass' if rep.passed else 'FAIL'}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", default=None, help="golden directory (default: the repository's tests/golden)")
    ap.add_argument("--rtol", type=float, default=1e-10, help="largest relative error that passes")
    ap.add_argument("--verbose", action="store_true", help="also print every key of every component")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("validate_torch: torch is not installed; skipped")
        return 0
    torch.set_num_threads(1)
    reports, man = validate(torch, args.golden, args.rtol, args.verbose)
    print(f"PyTorch {torch.__version__} (float64, autograd) vs xiref {man['xiref_version']} golden vectors "
          f"(seed {man['seed']}), rtol {args.rtol:g}")
    print(table(reports, man))
    failed = [r for r in reports if not r.passed]
    for rep in failed:
        print()
        print(rep)
    print(f"{len(reports) - len(failed)}/{len(reports)} components pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
