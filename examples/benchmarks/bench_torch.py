"""The update of examples/benchmarks/bench_update.py written in PyTorch (CPU), for the speed comparison only.

Optional, benchmark-only import: xiref itself never imports torch. The function mirrors `xiref_update` in
bench_update.py on the same agent's wiring and widths (after pruning too): twin critics + target critics +
actor + α, the same losses, the same number of forward/backward passes — two per gated network for the
'pair' baseline — and Adam; autograd gives the gradients. It is timed, not checked for equal numbers
(examples/validate_torch.py checks gradients against PyTorch).
"""
import numpy as np

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
    passes = 2 if cfg.gated else 1                       # 'pair' baseline: two mask draws per gated network
    gen = torch.Generator().manual_seed(args.seed)
    params = {k: {n: torch.tensor(a, dtype=tdt, requires_grad=n in ("W", "b", "s", "c")) for n, a in p.items()}
              for k, p in agent.params.items()}
    stats = {k: {n: torch.tensor(a, dtype=tdt) for n, a in p.items()} for k, p in agent.stats.items()}
    target = {k: {n: v.detach().clone() for n, v in p.items()} for k, p in params.items() if k.startswith("critic")}
    theta = {k: torch.tensor(v, dtype=tdt) for k, v in agent.theta.items()}
    log_alpha = torch.zeros(1, dtype=tdt, requires_grad=True)
    specs = {net: wr.net_layers(net) for net in wr.nets()}
    state_l = tuple(s for s in specs.get("ofenet", ()) if "/s" in s.name)
    action_l = tuple(s for s in specs.get("ofenet", ()) if "/a" in s.name)
    opts = {net: torch.optim.Adam([t for s in ss for t in params[s.name].values()], lr=3e-4, foreach=True)
            for net, ss in specs.items()}
    opt_alpha = torch.optim.Adam([log_alpha], lr=3e-4)
    acts_fn = {"relu": F.relu, "swish": F.silu, "linear": lambda x: x}

    def forward(layers, inputs, gates, P=params, bn_train=False, update_stats=False):
        acts = dict(inputs)
        for s in layers:
            p = P[s.name]
            h = torch.cat([acts[i] for i in s.inputs], 1) if len(s.inputs) > 1 else acts[s.inputs[0]]
            u = torch.addmm(p["b"], h, p["W"])
            if s.bn:
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
        inputs = {k: v for k, v in feats.items() if not k.startswith("ofenet/a")}
        inputs["act"] = a
        acts = forward(action_l + specs["critic1"] + specs["critic2"], inputs,
                       expected("ofenet", "critic1", "critic2"), {**params, **P})
        return acts["critic1/out"][:, 0], acts["critic2/out"][:, 0]

    def gated_step(net, inputs, loss_of_acts, bn_train=False):
        """Average of `passes` pathwise gradients, pair θ-gradient, Adam, θ-step (η_θ tiny as in xiref)."""
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
        for k in ("critic1", "critic2"):
            gated_step(k, feats, lambda acts, k=k: (acts[k + "/out"][:, 0] - y) ** 2)
        f_actor = {k: v for k, v in feats.items() if k != "act" and not k.startswith("ofenet/a")}
        eps = torch.randn(B, A, generator=gen, dtype=tdt)

        def actor_loss(acts):
            a, lp = tanh_gaussian(acts["actor/out"], eps)
            q1, q2 = q_values({}, f_actor, a)
            return alpha * lp - torch.minimum(q1, q2)
        # OFENet's action block and the critics are frozen in the actor loss: no weight gradients there
        frozen = [t for n in ("ofenet", "critic1", "critic2") for s in specs.get(n, ())
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
