"""MEMprop: a fully memristive spiking network trained by BPTT through device equations.

Zhou, Eshraghian, Choi, Lu, Kang, "Gradient-based learning on dynamical RRAM arrays",
IEEE JETCAS 2022 (arXiv:2206.12992). Topology (the paper does not give its sizes or
synapse model; these are the project's choices, see docs/memprop.md)::

    image x in [0, 1]^784
      -> DAC: read voltages v_in = x * v_read                          (V)
      -> RRAM crossbar 1 (784 -> H), column currents                   (A)
      -> current gain g1 (ideal current mirror) -> MIF layer (H)       analog v (V)
      -> ideal voltage amplifier v_read_in = a_v * v_hidden            (V)
      -> RRAM crossbar 2 (H -> 10), column currents                    (A)
      -> current gain g2 -> MIF output layer (10)                      analog v (V)
      -> readout: logits = k_out * mean_t(v_out)  (or max / final)     softmax CE

Time: a window of ``n_steps * dt`` (default 100 x 50 us = 5 ms, i.e. 500 steps of the
authors' 10 us prototype map) in steps at which the MIF integration has converged
(docs/mif.md); the hidden layer drives crossbar 2 with its voltage averaged over each
step (trapezoid), and the ``"mean"`` readout is the trapezoid time average of the output
membrane over ``[0, n_steps dt]``, so both converge to the circuit's continuous values
at second order in ``dt``.

Every step of the ``n_steps`` time loop is one `lax.scan` iteration over the batch (a
leading array axis). With direct (current) coding the input is static, so crossbar 1 is
read once per sample and its currents are held over the whole window (as a sample-and-
hold would); rate coding (Bernoulli spikes per step, :func:`memjax.data.rate`) reads it
every step (all steps' reads in one matmul before the time scan). There is no threshold,
reset or surrogate: gradients are those of the MIF device equations
(:mod:`memjax.neurons.mif`).

Baselines with the same topology: `MEMprop` with ``synapse="dense"`` (unconstrained
software weights in siemens instead of conductance pairs), and `LIFNet` (LIF neurons with
a surrogate gradient, dense weights, spikes between layers).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._validation import concrete
from ..crossbar import AbstractSynapse, Crossbar, CrossbarConfig, init_weight
from ..integrate import check_checkpoint, checkpointed_scan
from ..neurons._base import AbstractNeuron
from ..neurons.lif import LIF
from ..neurons.mif import MIF

__all__ = [
    "DenseSynapse",
    "MEMprop",
    "LIFNet",
    "cross_entropy",
    "memprop_loss",
    "memprop_eval",
    "project",
]

Readout = Literal["mean", "max", "final"]
Encoding = Literal["direct", "rate"]


class DenseSynapse(AbstractSynapse):
    """Ideal software weights ``i = v @ W`` (``W`` in S): the crossbar-free baseline.

    **Fields:** `weight` (``(n_in, n_out)``, S), `v_read` (static: the full-scale input
    voltage, V, as `memjax.crossbar.CrossbarConfig.v_read`; default 0.2). ``key`` is
    ignored (no read noise).
    """

    weight: Float[Array, "n_in n_out"]
    v_read: float = eqx.field(static=True, default=0.2)

    def __check_init__(self):
        if len(np.shape(self.weight)) != 2:
            raise ValueError(
                f"DenseSynapse.weight must have shape (n_in, n_out); got {np.shape(self.weight)}"
            )
        if not self.v_read > 0:
            raise ValueError(f"DenseSynapse.v_read must be > 0 (V); got {self.v_read!r}")

    def __call__(self, v, key=None):
        return v @ self.weight

    def effective_weight(self):
        return self.weight

    @property
    def n_in(self) -> int:
        return self.weight.shape[0]

    @property
    def n_out(self) -> int:
        return self.weight.shape[1]


def _read(syn, v, key):
    """Column currents (A) for row voltages ``v`` (V) of a synapse layer."""
    return syn(v) if key is None else syn(v, key)


def check_images(owner: str, x, n_in: int, max_ndim: int = 2):
    """``x`` as a floating array with a batch axis, and whether it was unbatched.

    Accepts intensities in [0, 1] of shape ``(n_in,)`` (one unbatched image: a batch
    axis is added; the caller removes it from the result) or ``(batch, n_in)`` (with
    ``max_ndim = 3`` also ``(T, batch, n_in)``). float16 is promoted to float32. Raises
    ``TypeError`` for integer or bool images (scale uint8 images to
    [0, 1] first) and ``ValueError`` for another shape or for values outside [0, 1]
    (under `jit` an `eqx.error_if` error).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{owner}: x must be floating intensities in [0, 1]; got dtype {x.dtype} "
            f"(scale uint8 images by 1/255 first)"
        )
    if x.dtype == jnp.float16:
        x = x.astype(jnp.float32)
    if x.ndim < 1 or x.ndim > max_ndim or x.shape[-1] != n_in:
        shapes = "(n_in,) or (batch, n_in)" + (" or (T, batch, n_in)" if max_ndim == 3 else "")
        raise ValueError(f"{owner}: x must have shape {shapes} with n_in = {n_in}; got {x.shape}")
    msg = f"{owner}: x must be intensities scaled to [0, 1] (divide 0..255 images by 255)"
    bad = ~((x >= 0) & (x <= 1))
    bad_now = concrete(bad)
    if bad_now is None:
        x = eqx.error_if(x, jnp.any(bad), msg)
    elif np.any(bad_now):
        raise ValueError(f"{msg}; got values in [{float(jnp.min(x))}, {float(jnp.max(x))}]")
    unbatched = x.ndim == 1
    return (x[None] if unbatched else x), unbatched


def _readout(vs: Float[Array, "T batch n"], kind: str, v0=None) -> Float[Array, "batch n"]:
    """Reduce samples ``vs[k]`` at ``(k + 1) dt`` over time; with ``v0`` (the sample at
    0) ``"mean"`` is the trapezoid time average over ``[0, T dt]``."""
    if kind == "mean":
        if v0 is None:
            return jnp.mean(vs, axis=0)
        return (jnp.sum(vs, axis=0) + 0.5 * (v0 - vs[-1])) / vs.shape[0]
    if kind == "max":
        return jnp.max(vs, axis=0)
    if kind == "final":
        return vs[-1]
    raise ValueError(f"readout must be 'mean', 'max' or 'final'; got {kind!r}")


def _accumulate(acc, v, kind: str):
    """One step of the running readout: sum (for the mean), maximum, or last value."""
    if kind == "mean":
        return acc + v
    if kind == "max":
        return jnp.maximum(acc, v)
    if kind == "final":
        return v
    raise ValueError(f"readout must be 'mean', 'max' or 'final'; got {kind!r}")


def _advance(neuron, state, i_in, h, substeps: int):
    """``substeps`` steps of ``h`` with ``i_in`` held, in one `lax.fori_loop` (compile
    time independent of ``substeps``)."""
    if substeps == 1:
        return neuron.step(state, i_in, h)
    return jax.lax.fori_loop(0, substeps, lambda _, s: neuron.step(s, i_in, h), state)


def _freeze(m, train: bool):
    return m if train else jax.lax.stop_gradient(m)


class MEMprop(eqx.Module):
    """Crossbar -> MIF -> crossbar -> MIF network (see the module docstring).

    **Fields:**

    - `syn1`, `syn2`: synapses (`memjax.crossbar.AbstractSynapse`): `Crossbar`
      (conductance pairs) or `DenseSynapse`; called as ``syn(v_volts, key=None) ->
      currents``. The DAC full scale (the read voltage of a pixel of intensity 1) is
      ``syn1.v_read`` (for a crossbar its ``CrossbarConfig.v_read``), also readable as
      the property :attr:`MEMprop.v_read`.
    - `neuron1`, `neuron2`: `MIF` parameters of the hidden and output layers (scalars or
      per-neuron arrays); stepped through the neuron interface (``neuron.step``,
      ``neuron.output``).
    - `g1`, `g2`: current gains from column current to neuron input current (A/A).
    - `a_v`: gain of the voltage amplifier from hidden membrane voltage to the read
      voltage of crossbar 2 (V/V).
    - `log_k_out`: log of the readout gain ``k_out`` from the output membrane voltage to
      logits (1/V); trained (a software scale after the ADC), in log space so Adam
      adapts it multiplicatively.
    - `dt` (s), `n_steps`, `substeps`: the time discretisation; the window is
      ``n_steps * dt`` (default 50 us x 100 = 5 ms). ``substeps`` splits each neuron
      step in a `lax.fori_loop` (the layers still exchange currents once per ``dt``).
    - `encoding`: ``"direct"`` (static current) or ``"rate"`` (Bernoulli spikes of
      ``rate_max * dt`` probability per unit intensity per step).
    - `readout`: ``"mean"`` (trapezoid time average), ``"max"`` or ``"final"`` membrane
      voltage over time.
    - `train_neurons`: if False (default) the MIF parameters get no gradient.
    - `checkpoint`: what BPTT stores (`memjax.integrate.checkpointed_scan`): ``"step"``
      (default: each step rematerialised, one state per step kept), ``"none"`` (every
      intermediate kept), ``"sqrt"`` or an int segment length (memory ``O(sqrt(T))``
      for long windows, at one extra forward pass; see docs/performance.md).
    """

    syn1: AbstractSynapse
    syn2: AbstractSynapse
    neuron1: AbstractNeuron
    neuron2: AbstractNeuron
    log_k_out: Float[Array, ""]
    g1: float = eqx.field(static=True, default=2.0)
    g2: float = eqx.field(static=True, default=2.0)
    a_v: float = eqx.field(static=True, default=2.0)
    dt: float = eqx.field(static=True, default=5e-5)
    n_steps: int = eqx.field(static=True, default=100)
    substeps: int = eqx.field(static=True, default=1)
    encoding: Encoding = eqx.field(static=True, default="direct")
    rate_max: float = eqx.field(static=True, default=1000.0)
    readout: Readout = eqx.field(static=True, default="mean")
    train_neurons: bool = eqx.field(static=True, default=False)
    checkpoint: str | int = eqx.field(static=True, default="step")

    def __check_init__(self):
        for name in ("syn1", "syn2"):
            if not isinstance(getattr(self, name), AbstractSynapse):
                raise ValueError(
                    f"MEMprop.{name} must be an AbstractSynapse (Crossbar, DenseSynapse); "
                    f"got {type(getattr(self, name)).__name__}"
                )
        for name in ("neuron1", "neuron2"):
            n = getattr(self, name)
            if not (isinstance(n, AbstractNeuron) and n.continuous):
                raise ValueError(
                    f"MEMprop.{name} must be a continuous-time AbstractNeuron (e.g. MIF); "
                    f"got {type(n).__name__}"
                )
        for name in ("g1", "g2", "a_v", "dt", "rate_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MEMprop.{name} must be > 0; got {getattr(self, name)}")
        if self.n_steps < 1 or self.substeps < 1:
            raise ValueError(
                f"MEMprop.n_steps and MEMprop.substeps must be >= 1; got "
                f"{self.n_steps}, {self.substeps}"
            )
        if self.encoding not in ("direct", "rate"):
            raise ValueError(f"MEMprop.encoding must be 'direct' or 'rate'; got {self.encoding!r}")
        if self.readout not in ("mean", "max", "final"):
            raise ValueError(
                f"MEMprop.readout must be 'mean', 'max' or 'final'; got {self.readout!r}"
            )
        check_checkpoint("MEMprop.checkpoint", self.checkpoint)

    def __call__(
        self,
        x: Float[Array, "batch n_in"],
        key: PRNGKeyArray | None = None,
        *,
        spikes: Float[Array, "T batch n_in"] | None = None,
        traces: bool = False,
    ):
        """Logits ``[batch, n_out]`` for intensities ``x`` in [0, 1] of shape ``[batch,
        n_in]``; one unbatched image ``[n_in]`` gives ``[n_out]`` (and traces without the
        batch axis). Images are computed in the wider of their dtype and the synapses'
        (float16 is promoted to float32); integer images
        (e.g. uint8) raise ``TypeError`` and values outside [0, 1] ``ValueError`` (under
        `jit` an `eqx.error_if` error): scale 0..255 images to [0, 1] first.

        ``key`` draws fresh crossbar read noise (when the crossbar's config enables it)
        and the rate-coding spikes. ``spikes`` (``encoding="rate"`` only): input spikes
        ``[n_steps, batch, n_in]`` encoded beforehand (e.g. :func:`memjax.data.rate`),
        used instead of drawing them; ``x`` then only gives the batch shape. With
        ``traces=True`` returns ``(logits, (v_hidden, v_out))`` with the membrane
        voltages ``[T, batch, n]`` (V).
        """
        x, unbatched = check_images("MEMprop", x, self.syn1.n_in)
        weights = jax.tree.leaves(eqx.filter(self.syn1, eqx.is_inexact_array))
        x = x.astype(jnp.result_type(x.dtype, *(w.dtype for w in weights)))
        if unbatched and spikes is not None:
            spikes = jnp.asarray(spikes)[:, None]
        n1 = _freeze(self.neuron1, self.train_neurons)
        n2 = _freeze(self.neuron2, self.train_neurons)
        batch = x.shape[0]
        T = self.n_steps
        if key is None:
            k_in = k1 = None
            k2s = None
        else:
            k_in, k1, k2 = jax.random.split(key, 3)
            k2s = jax.random.split(k2, T)
        s1 = n1.init_state((batch, self.syn1.n_out), x.dtype)
        s2 = n2.init_state((batch, self.syn2.n_out), x.dtype)
        h = self.dt / self.substeps

        if spikes is not None and self.encoding != "rate":
            raise ValueError("MEMprop: spikes are an input of encoding='rate' only")
        if self.encoding == "direct":
            i1_static = self.g1 * _read(self.syn1, x * self.v_read, k1)
            xs = None
        else:
            if spikes is not None:
                spikes = jnp.asarray(spikes, x.dtype)
                if spikes.shape != (T,) + x.shape:
                    raise ValueError(
                        f"MEMprop: spikes must have shape (n_steps, batch, n_in) = "
                        f"{(T,) + x.shape}; got {spikes.shape}"
                    )
            elif k_in is None:
                raise ValueError("MEMprop with encoding='rate' needs a key (or spikes)")
            else:
                p = jnp.clip(x, 0.0, 1.0) * jnp.minimum(self.rate_max * self.dt, 1.0)
                spikes = jax.random.bernoulli(k_in, p[None], (T,) + x.shape).astype(x.dtype)
            # Crossbar 1 read for every step before the time scan: one [T batch, n_in]
            # matmul instead of T small ones, and outside the rematerialised body, so
            # the backward pass does not recompute it (the same currents and read noise
            # as reading step by step with the keys split(k1, T)).
            if k1 is None:
                xs = self.g1 * _read(self.syn1, spikes * self.v_read, None)
            else:
                read = lambda st, kk: _read(self.syn1, st * self.v_read, kk)  # noqa: E731
                xs = self.g1 * jax.vmap(read)(spikes, jax.random.split(k1, T))

        def body(carry, inp):
            s1, s2, acc = carry
            t, xt = inp
            i1 = i1_static if self.encoding == "direct" else xt
            v1_start = n1.output(s1)
            s1 = _advance(n1, s1, i1, h, self.substeps)
            v1 = n1.output(s1)
            # crossbar 2 is driven by the hidden voltages held at their step average
            # (trapezoid): the output layer's input is second order in dt as well
            v_in2 = self.a_v * (0.5 * (v1_start + v1))
            i2 = self.g2 * _read(self.syn2, v_in2, None if k2s is None else k2s[t])
            s2 = _advance(n2, s2, i2, h, self.substeps)
            v2 = n2.output(s2)
            if traces:
                return (s1, s2, acc), (v1, v2)
            # Without traces the readout is reduced on the fly, so nothing of length T
            # is stored (BPTT memory then follows the checkpointing mode alone).
            return (s1, s2, _accumulate(acc, v2, self.readout)), None

        # Default "step": rematerialise each step in the backward pass: the scan then
        # stores only the neuron states per step instead of every intermediate of the
        # device equations. "sqrt" bounds memory for long windows (docs/performance.md).
        ts = jnp.arange(T)
        v2_0 = n2.output(s2)
        acc0 = jnp.full_like(s2.v, -jnp.inf) if self.readout == "max" else jnp.zeros_like(s2.v)
        (_, s2_end, acc), out = checkpointed_scan(
            body, (s1, s2, acc0), (ts, xs), checkpoint=self.checkpoint
        )
        if traces:
            v_red = _readout(out[1], self.readout, v2_0)
        elif self.readout == "mean":
            # trapezoid rule over the samples at 0, dt, ..., T dt: the time average of v
            v_red = (acc + 0.5 * (v2_0 - n2.output(s2_end))) / T
        else:
            v_red = acc
        logits = jnp.exp(self.log_k_out) * v_red
        if unbatched:
            logits = logits[0]
            out = None if out is None else jax.tree.map(lambda a: a[:, 0], out)
        return (logits, out) if traces else logits

    @property
    def v_read(self) -> float:
        """DAC full-scale read voltage (V) for a pixel of intensity 1: ``syn1.v_read``."""
        return self.syn1.v_read

    @property
    def k_out(self):
        """Readout gain (1/V)."""
        return jnp.exp(self.log_k_out)

    @classmethod
    def init(
        cls,
        key: PRNGKeyArray,
        n_in: int = 784,
        n_hidden: int = 512,
        n_out: int = 10,
        *,
        synapse: Literal["crossbar", "dense"] = "crossbar",
        crossbar_config=None,
        w_std: float = 0.125,
        neuron: MIF | None = None,
        output_neuron: MIF | None = None,
        k_out: float = 200.0,
        **kwargs,
    ) -> "MEMprop":
        """Build a network with normalised initial weights ``w = clip(w_std z, -1, 1)``,
        ``z ~ N(0, 1)`` (:func:`memjax.crossbar.init_weight`).

        A crossbar weight is ``w = u_pos - u_neg`` in [-1, 1] (``G = G_min + u (G_max -
        G_min)``); it is initialised one-sided, ``u_pos = max(w, 0)``, ``u_neg = max(-w,
        0)`` (``Crossbar.init(..., distribution="normal", pairing="one-sided")``). The
        dense baseline uses ``W = w (G_max - G_min)`` (S) with the same ``w`` and the
        config's ``v_read``, so both start from the same currents. Other keyword
        arguments set the fields.
        """
        config = CrossbarConfig() if crossbar_config is None else crossbar_config
        if synapse not in ("crossbar", "dense"):
            raise ValueError(
                f"MEMprop.init: synapse must be 'crossbar' or 'dense'; got {synapse!r}"
            )
        dG = float(config.device.G_max - config.device.G_min)
        k1, k2 = jax.random.split(key, 4)[:2]  # keys 0, 1 of four: fixed per seed

        def make(kw, a, b):
            if synapse == "dense":
                w = init_weight(kw, (a, b), "normal", w_std)
                return DenseSynapse(w * dG, v_read=config.v_read)
            return Crossbar.init(
                kw, a, b, config, scale=w_std, distribution="normal", pairing="one-sided"
            )

        neuron = MIF() if neuron is None else neuron
        output_neuron = neuron if output_neuron is None else output_neuron
        return cls(
            syn1=make(k1, n_in, n_hidden),
            syn2=make(k2, n_hidden, n_out),
            neuron1=neuron,
            neuron2=output_neuron,
            log_k_out=jnp.log(jnp.asarray(float(k_out))),
            **kwargs,
        )


class LIFNet(eqx.Module):
    """Surrogate-gradient LIF baseline: dense 784 -> H LIF -> dense H -> 10 LIF.

    Direct coding (the static image as input current every step, its projection
    computed once) or an input sequence ``[T, batch, n_in]`` (projected step by step),
    spikes between the layers (``neuron.output``), logits = ``k_out * readout(v_out)``
    of the output layer's membrane (whose spikes are not used). Unitless.
    """

    w1: Float[Array, "n_in n_hidden"]
    w2: Float[Array, "n_hidden n_out"]
    b1: Float[Array, " n_hidden"]
    b2: Float[Array, " n_out"]
    neuron: LIF
    k_out: float = eqx.field(static=True, default=1.0)
    n_steps: int = eqx.field(static=True, default=10)
    readout: Readout = eqx.field(static=True, default="mean")

    @classmethod
    def init(cls, key, n_in=784, n_hidden=512, n_out=10, *, neuron: LIF | None = None, **kwargs):
        k1, k2 = jax.random.split(key)
        w1 = jax.random.normal(k1, (n_in, n_hidden)) / jnp.sqrt(n_in)
        w2 = jax.random.normal(k2, (n_hidden, n_out)) / jnp.sqrt(n_hidden)
        return cls(
            w1=w1,
            w2=w2,
            b1=jnp.zeros(n_hidden),
            b2=jnp.zeros(n_out),
            neuron=LIF() if neuron is None else neuron,
            **kwargs,
        )

    def __call__(self, x, key=None, *, traces: bool = False):
        """Logits ``[batch, n_out]``. ``x`` is a static input ``[batch, n_in]`` (injected
        as current at every one of the ``n_steps`` steps) or an input sequence ``[T, batch,
        n_in]`` (e.g. rate-coded spikes, :func:`memjax.data.rate`) with ``T = n_steps``,
        with values in [0, 1]. One unbatched image ``[n_in]`` gives ``[n_out]``. Input
        checks and dtype promotion as `MEMprop` (:func:`check_images`)."""
        x, unbatched = check_images("LIFNet", x, self.w1.shape[0], max_ndim=3)
        if x.ndim == 3:
            if x.shape[0] != self.n_steps:
                raise ValueError(
                    f"LIFNet: an input sequence must have n_steps = {self.n_steps} steps "
                    f"on axis 0; got shape {x.shape}"
                )
            # Each step's input is projected inside the scan (its slice stays in cache).
            xs, i1 = x, None
        else:
            xs, i1 = None, x @ self.w1 + self.b1[None]
        dtype = jnp.result_type(x.dtype, self.w1.dtype)
        n = jax.lax.stop_gradient(self.neuron)
        s1 = n.init_state((x.shape[-2], self.w1.shape[1]), dtype)
        s2 = n.init_state((x.shape[-2], self.w2.shape[1]), dtype)

        def body(carry, xt):
            s1, s2 = carry
            s1 = n.step(s1, i1 if xt is None else xt @ self.w1 + self.b1[None])
            s2 = n.step(s2, n.output(s1) @ self.w2 + self.b2[None])
            out = (s1.v, s2.v) if traces else s2.v
            return (s1, s2), out

        _, out = jax.lax.scan(body, (s1, s2), xs, length=self.n_steps)
        v_out = out[1] if traces else out
        logits = self.k_out * _readout(v_out, self.readout)
        if unbatched:
            logits = logits[0]
            out = jax.tree.map(lambda a: a[:, 0], out)
        return (logits, out) if traces else logits


from ..losses import accuracy as _accuracy  # noqa: E402
from ..losses import cross_entropy as cross_entropy  # noqa: E402


def memprop_loss(model, x, y: Int[Array, " batch"], key):
    """``loss_fn`` for `memjax.training.fit`: cross-entropy and batch accuracy."""
    logits = model(x, key)
    return cross_entropy(logits, y), {"accuracy": _accuracy(logits, y)}


def memprop_eval(model, x, y: Int[Array, " batch"]):
    """``eval_fn`` for `memjax.training.evaluate`: deterministic (no read noise)."""
    logits = model(x)
    return {"accuracy": _accuracy(logits, y), "loss": cross_entropy(logits, y)}


def project(model):
    """Clip every crossbar's ``u`` to [0, 1] (``memjax.crossbar.project_crossbars``)."""
    from ..crossbar import project_crossbars

    return project_crossbars(model)
