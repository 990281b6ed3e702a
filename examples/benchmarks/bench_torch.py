"""The update of examples/benchmarks/bench_update.py written in PyTorch (CPU), for the speed comparison only.

Optional, benchmark-only import: xiref itself never imports torch. The function mirrors `xiref_update` in
bench_update.py on the same agent's wiring and widths (after pruning too): twin critics + target critics +
actor + α, the same losses, the same passes per gated network — two sampled forward/backward passes for the
'pair' baseline; for 'flip' one sampled forward/backward that also yields each example's gate gradients, a
second gate-gradient backward at frozen BN statistics where the network has BN, and one forward with one gate
per example flipped (Eq. 33–36) — and Adam; autograd gives the gradients. It is timed, not checked for equal numbers
(examples/validate_torch.py checks gradients against PyTorch).
"""
import numpy as np

from xiref.ofenet import action_layers, state_layers, without_action_block

LOG_2, LOG_2PI = float(np.log(2.0)), float(np.log(2.0 * np.pi))


def torch_update(agent, args, dtype, threads):
    """A function running one PyTorch-CPU update equivalent to xiref_update on `agent`'s shapes, or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tdt = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[np.dtype(dtype)]
    cfg, wr = agent.cfg, agent.wiring
    B, A = args.batch, args.act_dim
    flip = cfg.gated and cfg.baseline == "flip"
    if cfg.gated and cfg.baseline not in ("pair", "flip"):
        raise ValueError(f"the PyTorch update mirrors the baselines pair and flip, not {cfg.baseline}")
    passes = 2 if cfg.gated and not flip else 1          # 'pair' baseline: two mask draws per gated network
    gen = torch.Generator().manual_seed(args.seed)
    params = {k: {n: torch.tensor(a, dtype=tdt, requires_grad=n in ("W", "b", "s", "c")) for n, a in p.items()}
              for k, p in agent.params.items()}
    stats = {k: {n: torch.tensor(a, dtype=tdt) for n, a in p.items()} for k, p in agent.stats.items()}
    critics = wr.critics()
    target = {s.name: {n: v.detach().clone() for n, v in params[s.name].items()}
              for c in critics for s in wr.net_layers(c)}
    theta = {k: torch.tensor(v, dtype=tdt) for k, v in agent.theta.items()}
    log_alpha = torch.zeros(1, dtype=tdt, requires_grad=True)
    specs = {net: wr.net_layers(net) for net in wr.nets()}
    state_l, action_l = state_layers(wr), action_layers(wr)
    opts = {net: torch.optim.Adam([t for s in ss for t in params[s.name].values()], lr=3e-4, foreach=True)
            for net, ss in specs.items()}
    opt_alpha = torch.optim.Adam([log_alpha], lr=3e-4)
    acts_fn = {"relu": F.relu, "swish": F.silu, "linear": lambda x: x}

    def forward(layers, inputs, gates, P=params, bn_train=False, update_stats=False, fixed=None, record=None):
        """fixed: {layer: (mean, var)} BN statistics to normalise with (the sampled batch's, Eq. 36); record: a
        dict that receives each BN layer's batch statistics."""
        acts = dict(inputs)
        for s in layers:
            p = P[s.name]
            h = torch.cat([acts[i] for i in s.inputs], 1) if len(s.inputs) > 1 else acts[s.inputs[0]]
            u = torch.addmm(p["b"], h, p["W"])
            if s.bn and fixed is not None:
                u = F.batch_norm(u, *fixed[s.name], p["s"], p["c"], False, 0.0, cfg.eps_bn)
            elif s.bn:
                if record is not None:
                    record[s.name] = (u.detach().mean(0), u.detach().var(0, unbiased=False))
                st = stats[s.name] if (update_stats or not bn_train) else {"mean": None, "var": None}
                u = F.batch_norm(u, st["mean"], st["var"], p["s"], p["c"], bn_train, 1 - cfg.bn_momentum, cfg.eps_bn)
            y = acts_fn[s.act](u)
            acts[s.name] = y * gates[s.name] if s.gated else y
        return acts

    def masks(layers):
        return {s.name: (torch.rand(B, len(theta[s.name]), generator=gen, dtype=tdt)
                         < theta[s.name].clamp(cfg.eps_xi, 1 - cfg.eps_xi)).to(tdt) for s in layers if s.gated}

    def expected(*nets):
        return {s.name: theta[s.name] for n in nets for s in specs.get(n, ()) if s.gated}

    def tanh_gaussian(out, eps):
        mu, lam = out[:, :A], out[:, A:]
        ls = -5.0 + 3.5 * (torch.tanh(lam) + 1.0)
        x = mu + ls.exp() * eps
        log_jac = 2.0 * (LOG_2 - x - F.softplus(-2.0 * x))
        return torch.tanh(x), (-0.5 * eps ** 2 - ls - 0.5 * LOG_2PI - log_jac).sum(1)

    def q_values(P, feats, a):
        inputs = dict(without_action_block(wr, feats), act=a)
        acts = forward(action_l + tuple(s for c in critics for s in specs[c]), inputs,
                       expected("ofenet", *critics), {**params, **P})
        return tuple(acts[specs[c][-1].name][:, 0] for c in critics)

    def flip_step(net, inputs, loss_of_acts, bn_train):
        """Flip (Eq. 33–34): a sampled pass whose backward also gives ∂ℓ_i/∂ξ_ij, a second one at the sampled
        batch's BN statistics held fixed where the net has BN (Eq. 36), one forward with u_i flipped."""
        gated = [s for s in specs[net] if s.gated]
        xi = {k: v.requires_grad_(True) for k, v in masks(specs[net]).items()}
        opts[net].zero_grad()
        bn = bn_train and any(s.bn for s in specs[net])
        fixed = {} if bn else None                        # the sampled batch's BN statistics
        ell = loss_of_acts(forward(specs[net], inputs, xi, bn_train=bn_train, update_stats=True, record=fixed))
        weights = [t for s in specs[net] for t in params[s.name].values() if t.requires_grad]
        grads = torch.autograd.grad(ell.mean(), weights + [xi[s.name] for s in gated])
        for t, g in zip(weights, grads):
            t.grad = g
        slope = torch.cat([g * B for g in grads[len(weights):]], 1)              # (B, n): ∂ℓ_i/∂ξ_ij
        if bn:                                            # the slope at the statistics held fixed
            xi2 = {k: v.detach().requires_grad_(True) for k, v in xi.items()}
            ell2 = loss_of_acts(forward(specs[net], inputs, xi2, fixed=fixed))
            slope = torch.cat(torch.autograd.grad(ell2.sum(), [xi2[s.name] for s in gated]), 1)
        opts[net].step()
        with torch.no_grad():
            xi_all = torch.cat([xi[s.name].detach() for s in gated], 1)
            n = xi_all.shape[1]
            u = torch.randint(n, (B,), generator=gen)
            rows = torch.arange(B)
            flipped = xi_all.clone()
            flipped[rows, u] = 1.0 - flipped[rows, u]
            parts = dict(zip([s.name for s in gated], torch.split(flipped, [len(theta[s.name]) for s in gated], 1)))
            ell_f = loss_of_acts(forward(specs[net], inputs, parts, fixed=fixed))
            D = (2.0 * xi_all[rows, u] - 1.0) * (ell.detach() - ell_f)
            g = slope.mean(0) + torch.bincount(u, weights=D - slope[rows, u], minlength=n) * (n / B)
            for s, gs in zip(gated, torch.split(g, [len(theta[s.name]) for s in gated])):
                theta[s.name] = (theta[s.name] - 1e-12 * gs).clamp(0.0, 1.0)

    def gated_step(net, inputs, loss_of_acts, bn_train=False):
        """Average of `passes` pathwise gradients, pair θ-gradient, Adam, θ-step (η_θ tiny as in xiref)."""
        if flip:
            return flip_step(net, inputs, loss_of_acts, bn_train)
        ells, xis = [], []
        opts[net].zero_grad()
        for m in range(passes):
            xi = masks(specs[net])
            ell = loss_of_acts(forward(specs[net], inputs, xi, bn_train=bn_train, update_stats=m == 0))
            (ell.mean() / passes).backward()
            ells.append(ell.detach())
            xis.append(xi)
        opts[net].step()
        if cfg.gated:                                     # Eq. (22)-(23) pair, (32)
            diff = ells[0] - ells[1]
            for s in specs[net]:
                if s.gated:
                    tt = theta[s.name].clamp(cfg.eps_xi, 1 - cfg.eps_xi)
                    g = (diff @ (xis[0][s.name] - tt) - diff @ (xis[1][s.name] - tt)) / (tt * (1 - tt)) / (2 * B)
                    theta[s.name] = (theta[s.name] - 1e-12 * g).clamp(0.0, 1.0)

    def update(batch):
        obs, act, rew, obs2, done = (torch.from_numpy(x).to(tdt) for x in batch)
        if cfg.ofenet:
            T = cfg.target_dim
            gated_step("ofenet", {"obs": obs, "act": act},
                       lambda acts: ((acts["ofenet/head"] - obs2[:, :T]) ** 2).mean(1), bn_train=True)
        alpha = log_alpha.detach().exp()
        with torch.no_grad():
            f_next = forward(state_l, {"obs": obs2}, expected("ofenet"))
            a2, lp2 = tanh_gaussian(forward(specs["actor"], f_next, expected("actor"))["actor/out"],
                                    torch.randn(B, A, generator=gen, dtype=tdt))
            q1t, q2t = q_values(target, f_next, a2)
            y = rew + cfg.gamma * (1 - done) * (torch.minimum(q1t, q2t) - alpha * lp2)
            feats = forward(state_l + action_l, {"obs": obs, "act": act}, expected("ofenet"))
        for k in critics:
            gated_step(k, feats, lambda acts, k=k: (acts[specs[k][-1].name][:, 0] - y) ** 2)
        f_actor = {k: v for k, v in without_action_block(wr, feats).items() if k != "act"}
        eps = torch.randn(B, A, generator=gen, dtype=tdt)

        def actor_loss(acts):
            a, lp = tanh_gaussian(acts["actor/out"], eps)
            q1, q2 = q_values({}, f_actor, a)
            return alpha * lp - torch.minimum(q1, q2)
        # OFENet's action block and the critics are frozen in the actor loss: no weight gradients there
        frozen = [t for n in ("ofenet",) + critics for s in specs.get(n, ())
                  for t in params[s.name].values()]
        for t in frozen:
            t.requires_grad_(False)
        gated_step("actor", f_actor, actor_loss)
        for t in frozen:
            t.requires_grad_(True)
        with torch.no_grad():
            _, lp = tanh_gaussian(forward(specs["actor"], f_actor, expected("actor"))["actor/out"],
                                  torch.randn(B, A, generator=gen, dtype=tdt))
        opt_alpha.zero_grad()
        (-(log_alpha * (lp - A)).mean()).backward()        # Eq. (13), target entropy −A
        opt_alpha.step()
        with torch.no_grad():                              # Eq. (14)
            tp = [t for p in target.values() for t in p.values()]
            op = [params[k][n] for k, p in target.items() for n in p]
            torch._foreach_lerp_(tp, op, cfg.tau)
    return update
