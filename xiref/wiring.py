"""The one description of the agent's wiring (docs/METHOD.md §6, §7).

A `Wiring` lists free inputs (raw observation, action: never gated, never pruned) and dense layers in
forward order. Each layer names the sources it concatenates as input — free inputs or earlier layers'
units — so DenseNet concatenations and consumer networks (actor and critics reading OFENet features) are
just longer input lists. From this single description come:

* the forward/backward pass of every network (xiref/network.py),
* the expected parameter count C(θ), its gradient and the expected multiply-adds (Eq. 26–30),
* physical compaction when units are pruned (xiref/prune.py),
* network roles: OFENet's state/action blocks and head (LayerSpec.block), the critics (Wiring.roles) —
  read from here, never inferred from layer names.

Widths of gated layers are *not* stored here: they are the current lengths of the θ arrays, so the
wiring never changes when units are removed.
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class LayerSpec:
    """One dense layer u = [sources] W + b, optionally BN, activation, unit gates."""
    name: str            # unique layer name; also the name of its units as a source
    net: str             # owning network: 'ofenet', 'actor', 'critic1', 'critic2', ...
    inputs: tuple        # source names concatenated (in order) to form the layer input
    n_out: int           # initial number of units
    act: str             # 'relu' | 'swish' | 'linear'
    gated: bool          # units carry Bernoulli gates ξ ~ Bern(θ̃)   (Eq. 2)
    bn: bool = False     # BatchNorm before the activation            (Eq. 2')
    min_units: int = 0   # an MLP hidden layer keeps >= 1 unit; a DenseNet layer may vanish (§7)
    block: str = ""      # OFENet part: 'state' (z_o, Eq. 5), 'action' (z_oa, Eq. 6), 'head' (Eq. 7); '' elsewhere


@dataclass(frozen=True)
class Wiring:
    free: tuple          # ((name, width), ...) inputs that are always present
    layers: tuple        # LayerSpec in forward order
    roles: tuple = ()    # ((net, role), ...): role 'critic' marks a critic; a role is the net's knob/lr suffix

    @property
    def free_widths(self):
        return dict(self.free)

    # name and net look-ups, built once per Wiring (it is immutable)
    @cached_property
    def _by_name(self):
        return {s.name: s for s in self.layers}

    @cached_property
    def _by_net(self):
        nets = dict.fromkeys(s.net for s in self.layers)                   # in order of first appearance
        return {net: tuple(s for s in self.layers if s.net == net) for net in nets}

    @cached_property
    def _consumers(self):
        names = [name for name, _ in self.free] + [s.name for s in self.layers]
        return {name: tuple(s for s in self.layers if name in s.inputs) for name in names}

    @cached_property
    def _roles(self):
        return dict(self.roles)

    def layer(self, name):
        return self._by_name[name]

    def role(self, net):
        """Role of network `net` ('ofenet' | 'actor' | 'critic'); a net without a listed role is its own."""
        return self._roles.get(net, net)

    def critics(self):
        """The networks whose role is 'critic', in order of first appearance."""
        return tuple(net for net in self.nets() if self.role(net) == "critic")

    def net_layers(self, net):
        """The layers of one network, in forward order."""
        return self._by_net.get(net, ())

    def nets(self):
        return tuple(self._by_net)

    def gated_names(self, net=None):
        return tuple(s.name for s in self.layers if s.gated and (net is None or s.net == net))

    def consumers(self, name):
        """Layers that read the units of layer `name` (its rows in their W)."""
        return self._consumers.get(name, ())

    def source_widths(self, spec, theta):
        """Current width of each input source of `spec` (free width or len θ)."""
        free = self.free_widths
        return [free[src] if src in free else self.out_width(self.layer(src), theta) for src in spec.inputs]

    def out_width(self, spec, theta):
        return len(theta[spec.name]) if spec.gated else spec.n_out

    def row_slice(self, spec, source, theta):
        """Rows of spec's W that multiply the units of `source`."""
        widths = self.source_widths(spec, theta)
        k = spec.inputs.index(source)
        start = int(sum(widths[:k]))
        return slice(start, start + widths[k])


# ------------------------------------------------------------------ builders
def mlp(net, inputs, hidden, n_out, act="relu", gated=True):
    """Hidden layers of widths `hidden` (gated, ReLU) and an ungated linear output layer."""
    specs, src = [], tuple(inputs)
    for k, width in enumerate(hidden):
        name = f"{net}/h{k + 1}"
        specs.append(LayerSpec(name, net, src, width, act, gated, bn=False, min_units=1))
        src = (name,)
    specs.append(LayerSpec(f"{net}/out", net, src, n_out, "linear", False))
    return specs


def densenet_block(net, prefix, inputs, n_layers, units, gated=True, bn=True, block=""):
    """Eq. (5)/(6): layer l reads [inputs, y_1, …, y_{l−1}]; the block output is all of them.

    units: one width for every layer, or a sequence of n_layers widths; block: each layer's `block` field.
    """
    widths = [units] * n_layers if np.isscalar(units) else list(units)
    specs, src = [], tuple(inputs)
    for k in range(n_layers):
        name = f"{net}/{prefix}{k + 1}"
        specs.append(LayerSpec(name, net, src, int(widths[k]), "swish", gated, bn=bn, min_units=0,
                               block=block))
        src = src + (name,)
    return specs, src


def agent_wiring(obs_dim, act_dim, hidden=(256, 256), ofenet=None, gated=True):
    """The whole agent: optional OFENet, actor and twin critics (docs/METHOD.md §2, §3).

    ofenet: None (plain SAC) or dict(n_layers=L, units=u, target_dim=T[, widths=2L per-layer widths
            (state block then action block), gated=bool]).
    Returns a Wiring whose free inputs are 'obs' (O) and 'act' (A).
    """
    specs = []
    z_o, z_oa = ("obs",), ("obs", "act")
    if ofenet is not None:
        og, L = ofenet.get("gated", gated), ofenet["n_layers"]
        widths = ofenet.get("widths") or [ofenet["units"]] * (2 * L)
        state, z_o = densenet_block("ofenet", "s", ("obs",), L, widths[:L], og, block="state")
        action, z_oa = densenet_block("ofenet", "a", z_o + ("act",), L, widths[L:], og, block="action")
        specs += state + action
        # Eq. (7): linear prediction head ô = z_oa P + p
        specs.append(LayerSpec("ofenet/head", "ofenet", z_oa, ofenet["target_dim"], "linear", False, block="head"))
    specs += mlp("actor", z_o, hidden, 2 * act_dim, gated=gated)
    specs += mlp("critic1", z_oa, hidden, 1, gated=gated)
    specs += mlp("critic2", z_oa, hidden, 1, gated=gated)
    roles = (("ofenet", "ofenet"),) if ofenet is not None else ()
    roles += (("actor", "actor"), ("critic1", "critic"), ("critic2", "critic"))
    return Wiring(free=(("obs", obs_dim), ("act", act_dim)), layers=tuple(specs), roles=roles)


# ------------------------------------------------------------------ cost, Eq. (26)–(30)
def _out_widths(wiring, theta):
    """n̄_out of every layer, Σ_j θ_j (or n_out if ungated), each summed once.  Eq. (26)"""
    return {s.name: (np.sum(theta[s.name]) if s.gated else float(s.n_out)) for s in wiring.layers}


def _in_width(wiring, spec, n_out):
    """n̄_in = n_free + Σ_k θ_k over gated inputs.  Eq. (26)"""
    free = wiring.free_widths
    n_in = 0.0
    for src in spec.inputs:
        n_in = n_in + (free[src] if src in free else n_out[src])
    return n_in


def cost(wiring, theta):
    """C(θ): expected parameter count of all layers in the wiring.  Eq. (27)–(28).

    Plain NumPy without in-place updates: autograd differentiates it (tests/test_cost.py).
    """
    total, n_out = 0.0, _out_widths(wiring, theta)
    for spec in wiring.layers:
        n_in, m = _in_width(wiring, spec, n_out), n_out[spec.name]
        # C_layer = n̄_in n̄_out + n̄_out + 2 n̄_out [BN]      Eq. (27)
        total = total + n_in * m + m + (2.0 * m if spec.bn else 0.0)
    return total


def cost_grad(wiring, theta, net=None):
    """∂C/∂θ_j = (n̄_in of j's layer + 1 + 2[BN]) + Σ_{consumers c} n̄_out(c).  Eq. (29)

    For every gated layer, or only those of network `net`.
    """
    n_out = _out_widths(wiring, theta)
    grad = {}
    for spec in (wiring.layers if net is None else wiring.net_layers(net)):
        if not spec.gated:
            continue
        g = _in_width(wiring, spec, n_out) + 1.0 + (2.0 if spec.bn else 0.0)
        for consumer in wiring.consumers(spec.name):
            g = g + n_out[consumer.name]
        grad[spec.name] = np.full(len(theta[spec.name]), g, dtype=np.float64)
    return grad


def macs(wiring, theta, nets=None):
    """Expected forward multiply-adds per example, Σ_layers n̄_in n̄_out.  Eq. (30)"""
    total, n_out = 0.0, _out_widths(wiring, theta)
    for spec in wiring.layers:
        if nets is None or spec.net in nets:
            total = total + _in_width(wiring, spec, n_out) * n_out[spec.name]
    return float(total)


def param_count(params, nets=None, wiring=None):
    """Real parameter count of a layer container (W, b, BN s and c; not running statistics)."""
    total = 0
    for name, p in params.items():
        if nets is not None and wiring.layer(name).net not in nets:
            continue
        total += sum(p[k].size for k in ("W", "b", "s", "c") if k in p)
    return int(total)


def ones_theta(wiring, dtype=np.float64):
    """θ = 1 for every gated unit (the initial value, §7)."""
    return {s.name: np.ones(s.n_out, dtype=dtype) for s in wiring.layers if s.gated}
