"""PyTorch peers of the ``speed-lif`` and ``speed-mif`` benchmarks (optional: ``[peers]``).

- :class:`SnnTorchNet`: the 784-H-10 LIF network written the way snnTorch's tutorials
  write it (``nn.Linear`` + ``snn.Leaky`` per layer, a Python loop over time steps calling
  ``fc1`` on the input every step, ``mem2`` recorded and stacked). ``snn.Leaky`` with its
  defaults (reset by subtraction, ``reset_delay=True``): ``r = sg(H(mem - theta))``,
  ``mem = beta mem + I - theta r``, ``spk = H(mem - theta)`` with the fast-sigmoid
  surrogate. This differs from :mod:`memjax.neurons.lif` (immediate reset) in when the
  reset is applied, not in the work per step; ``benchmarks/_handjax.py`` has an exact JAX
  twin (``reset="delayed"``) that the tests compare it with.
- :class:`TorchMEMprop`: the MEMprop MIF network (crossbar -> MIF -> crossbar -> MIF) in
  eager PyTorch with a Python loop over time steps, the way the authors' public prototype
  runs, on the same equations and the same update as :func:`memjax.neurons.mif.mif_step`
  (exponential midpoint splitting, step-averaged layer coupling, trapezoid readout) so
  that both give the same loss for identical weights.

Import this module only where torch is installed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "SnnTorchNet",
    "TorchMEMprop",
    "make_step",
    "lif_from_params",
    "mif_from_memprop",
]


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


# --------------------------------------------------------------------------- LIF


class SnnTorchNet(nn.Module):
    """snnTorch tutorial-style two-layer LIF network; ``forward`` returns the logits
    ``mean_t(mem2)`` (``x``: ``[B, n_in]`` static or ``[T, B, n_in]`` spikes)."""

    def __init__(self, n_in=784, n_hidden=128, n_out=10, *, beta=0.9, slope=25.0):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        grad = surrogate.fast_sigmoid(slope=slope)
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=grad)
        self.fc2 = nn.Linear(n_hidden, n_out)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=grad)

    def forward(self, x, num_steps: int):
        mem1 = self.lif1.reset_mem()
        mem2 = self.lif2.reset_mem()
        mem2_rec = []
        for step in range(num_steps):
            cur1 = self.fc1(x if x.dim() == 2 else x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            mem2_rec.append(mem2)
        return torch.stack(mem2_rec, dim=0).mean(0)


def lif_from_params(params: dict, **kw) -> SnnTorchNet:
    """A :class:`SnnTorchNet` holding the weights of a ``benchmarks._handjax`` dict."""
    w1 = np.asarray(params["w1"])
    net = SnnTorchNet(w1.shape[0], w1.shape[1], np.asarray(params["w2"]).shape[1], **kw)
    with torch.no_grad():
        net.fc1.weight.copy_(_t(params["w1"]).T)
        net.fc1.bias.copy_(_t(params["b1"]))
        net.fc2.weight.copy_(_t(params["w2"]).T)
        net.fc2.bias.copy_(_t(params["b2"]))
    return net


def make_step(net: nn.Module, lr: float = 1e-3, project=None, **fwd_kw):
    """``step(x, y) -> loss``: zero_grad, forward, cross-entropy, backward, Adam step
    (then ``project(net)`` under no_grad, if given)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x, **fwd_kw), y)
        loss.backward()
        opt.step()
        if project is not None:
            with torch.no_grad():
                project(net)
        return loss.detach()

    return step


# --------------------------------------------------------------------------- MIF


def _phi1(z):
    small = z < 1e-4
    zs = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1.0 - 0.5 * z + z * z / 6.0, -torch.expm1(-zs) / zs)


_PHI2 = [(-1) ** n / math.factorial(n + 2) for n in range(6)]


def _phi2(z, m):
    """``(z - 1 + exp(-z)) / z^2`` given ``m = 1 - exp(-z)`` (series below the cut)."""
    small = z < (0.005 if z.dtype == torch.float64 else 0.1)
    zs = torch.where(small, torch.ones_like(z), z)
    ms = torch.where(small, torch.full_like(m, 0.5), m)
    series = torch.full_like(z, _PHI2[-1])
    for c in _PHI2[-2::-1]:
        series = c + z * series
    return torch.where(small, series, (zs - ms) / (zs * zs))


class _MMSS:
    def __init__(self, m):
        self.R_on, self.R_off = float(m.R_on), float(m.R_off)
        self.V_on, self.V_off = float(m.V_on), float(m.V_off)
        self.tau, self.v_t = float(m.tau), float(m.v_t)

    def p_on(self, V):
        return torch.sigmoid((V - self.V_on) / self.v_t)

    def p_off(self, V):
        return torch.sigmoid(-(V + self.V_off) / self.v_t)

    def G(self, x):
        return x / self.R_on + (1.0 - x) / self.R_off

    def rate(self, x, V):
        return ((1.0 - x) * self.p_on(V) - x * self.p_off(V)) / self.tau

    def x_update(self, x, V, dt):
        p_on, p_off = self.p_on(V), self.p_off(V)
        rate = ((1.0 - x) * p_on - x * p_off) / self.tau
        k = (p_on + p_off) * (dt / self.tau)
        return torch.clamp(x + dt * rate * _phi1(k), 0.0, 1.0)


class _MIF:
    """The MIF equations of :mod:`memjax.neurons.mif` with scalar parameters."""

    def __init__(self, p):
        self.C, self.E1, self.E2 = float(p.C), float(p.E1), float(p.E2)
        self.tau_a = float(p.tau_a)
        self.m1, self.m2 = _MMSS(p.m1), _MMSS(p.m2)
        self.s1, self.s2 = float(p.polarity1), float(p.polarity2)
        self.x0 = (float(p.m1.x0), float(p.m2.x0))

    def rest(self):
        """``(v, x1, x2)`` at rest: 100 fixed-point iterations from ``x0`` (as memjax)."""
        x1, x2 = torch.tensor(self.x0[0]), torch.tensor(self.x0[1])
        for _ in range(100):
            g1, g2 = self.m1.G(x1), self.m2.G(x2)
            v = (g1 * self.E1 + g2 * self.E2) / (g1 + g2)
            V1, V2 = self.s1 * (v - self.E1), self.s2 * (v - self.E2)
            x1 = self.m1.p_on(V1) / (self.m1.p_on(V1) + self.m1.p_off(V1))
            x2 = self.m2.p_on(V2) / (self.m2.p_on(V2) + self.m2.p_off(V2))
        g1, g2 = self.m1.G(x1), self.m2.G(x2)
        return (g1 * self.E1 + g2 * self.E2) / (g1 + g2), x1, x2

    def _filter(self, a, i, u, h):
        r = h / self.tau_a
        em = -math.expm1(-r)
        return a + (u - a) * em, i + (u - i) * em + (a - u) * (r * (1.0 - em))

    def _membrane(self, v, i0, i1, x1, x2, h):
        g1, g2 = self.m1.G(x1), self.m2.G(x2)
        z = (g1 + g2) * (h / self.C)
        m = -torch.expm1(-z)
        v_0 = (i0 + g1 * self.E1 + g2 * self.E2) / (g1 + g2)
        return v + (v_0 - v) * m + (i1 - i0) * (h / self.C) * _phi2(z, m)

    def step(self, state, i_in, dt):
        """The exponential-midpoint step of :func:`memjax.neurons.mif.mif_step`."""
        a, i, v, x1, x2 = state
        a_m, i_m = self._filter(a, i, i_in, 0.5 * dt)
        a_e, i_e = self._filter(a_m, i_m, i_in, 0.5 * dt)
        xm1 = torch.clamp(x1 + 0.5 * dt * self.m1.rate(x1, self.s1 * (v - self.E1)), 0.0, 1.0)
        xm2 = torch.clamp(x2 + 0.5 * dt * self.m2.rate(x2, self.s2 * (v - self.E2)), 0.0, 1.0)
        v = self._membrane(v, i, i_m, xm1, xm2, 0.5 * dt)
        x1 = self.m1.x_update(x1, self.s1 * (v - self.E1), dt)
        x2 = self.m2.x_update(x2, self.s2 * (v - self.E2), dt)
        v = self._membrane(v, i_m, i_e, x1, x2, 0.5 * dt)
        return a_e, i_e, v, x1, x2


class TorchMEMprop(nn.Module):
    """MEMprop (crossbar synapses, ideal converters, no read noise) in eager PyTorch.

    ``forward(x)`` for intensities ``x`` ``[B, 784]``: ``encoding="direct"`` reads
    crossbar 1 once and holds the currents; ``"rate"`` draws Bernoulli spikes with
    probability ``x min(rate_max dt, 1)`` every step and reads crossbar 1 every step.
    """

    def __init__(
        self,
        u1p,
        u1n,
        u2p,
        u2n,
        log_k_out,
        *,
        neuron1,
        neuron2,
        G_min,
        G_max,
        v_read,
        g1,
        g2,
        a_v,
        dt,
        n_steps,
        substeps=1,
        encoding="direct",
        rate_max=1000.0,
    ):
        super().__init__()
        self.u1p, self.u1n = nn.Parameter(_t(u1p)), nn.Parameter(_t(u1n))
        self.u2p, self.u2n = nn.Parameter(_t(u2p)), nn.Parameter(_t(u2n))
        self.log_k_out = nn.Parameter(_t(log_k_out))
        self.n1, self.n2 = _MIF(neuron1), _MIF(neuron2)
        self.G_min, self.dG = float(G_min), float(G_max - G_min)
        self.v_read, self.g1, self.g2, self.a_v = v_read, g1, g2, a_v
        self.dt, self.n_steps, self.substeps = dt, n_steps, substeps
        self.encoding, self.rate_max = encoding, rate_max
        self.rest1, self.rest2 = self.n1.rest(), self.n2.rest()

    def _W(self, up, un):
        return (self.G_min + up * self.dG) - (self.G_min + un * self.dG)

    def forward(self, x, spikes=None):
        """Logits; ``spikes`` ``[T, B, n_in]`` (optional, rate coding) replaces the
        Bernoulli draws (tests use it to feed memjax's spikes)."""
        B = x.shape[0]
        W1, W2 = self._W(self.u1p, self.u1n), self._W(self.u2p, self.u2n)
        H, O = W1.shape[1], W2.shape[1]

        def init(rest, n):
            z = x.new_zeros(B, n)
            v, x1, x2 = rest
            return z, z, z + v, z + x1, z + x2

        s1, s2 = init(self.rest1, H), init(self.rest2, O)
        h = self.dt / self.substeps
        if self.encoding == "direct":
            i1 = self.g1 * ((x * self.v_read) @ W1)
        else:
            p = x.clamp(0.0, 1.0) * min(self.rate_max * self.dt, 1.0)
        v2_0 = s2[2]
        vs = []
        for _ in range(self.n_steps):
            if self.encoding != "direct":
                st = torch.bernoulli(p) if spikes is None else spikes[len(vs)]
                i1 = self.g1 * ((st * self.v_read) @ W1)
            v1_start = s1[2]
            for _ in range(self.substeps):
                s1 = self.n1.step(s1, i1, h)
            i2 = self.g2 * ((self.a_v * 0.5 * (v1_start + s1[2])) @ W2)
            for _ in range(self.substeps):
                s2 = self.n2.step(s2, i2, h)
            vs.append(s2[2])
        # trapezoid time average over [0, n_steps dt], as MEMprop's "mean" readout
        v_mean = (torch.stack(vs, 0).sum(0) + 0.5 * (v2_0 - vs[-1])) / len(vs)
        return torch.exp(self.log_k_out) * v_mean

    def project(self):
        for u in (self.u1p, self.u1n, self.u2p, self.u2n):
            u.clamp_(0.0, 1.0)


def mif_from_memprop(model, **changes) -> TorchMEMprop:
    """A :class:`TorchMEMprop` with the weights and settings of a memjax ``MEMprop``
    whose synapses are ideal ``Crossbar``\\ s."""
    dev = model.syn1.config.device
    kw = dict(
        neuron1=model.neuron1,
        neuron2=model.neuron2,
        G_min=dev.G_min,
        G_max=dev.G_max,
        v_read=model.v_read,
        g1=model.g1,
        g2=model.g2,
        a_v=model.a_v,
        dt=model.dt,
        n_steps=model.n_steps,
        substeps=model.substeps,
        encoding=model.encoding,
        rate_max=model.rate_max,
    )
    kw.update(changes)
    return TorchMEMprop(
        model.syn1.u_pos,
        model.syn1.u_neg,
        model.syn2.u_pos,
        model.syn2.u_neg,
        model.log_k_out,
        **kw,
    )
