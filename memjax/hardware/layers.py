"""Crossbar layers of a deployed network: `HardwareAffine` and `HardwareConv2d`.

A layer ``y = x W^T + b`` (NIR weight ``W[n_out, n_in]``) is held as normalised
conductance pairs ``u[2, n_in, n_out]`` in [0, 1] (index 0: the positive cells, 1: the
negative), ``G = G_min + u (G_max - G_min)``, with the per-layer weight scale
``w_scale = max |W|`` (the layer's conductance range maps to its largest weight):

    v = DAC(x v_read / x_scale)                         row voltages (V)
    I = ADC(v (M_pos - M_neg) + read noise)              column currents (A)
    y = I x_scale w_scale / (v_read (G_max - G_min)) + b

where ``M = G`` without wire resistance and the IR-drop transfer matrix of
:func:`memjax.hardware.ir_drop.tiled_effective_conductance` with it. Before ``M``:
level quantisation (straight-through) and programming-noise injection in training mode,
drift ``G (t / t0)^(-nu)``, then the stuck cells at their stuck conductance. The bias
stays digital. ``Conv2d`` layers are the same crossbar read on image patches
(``c_in kh kw`` rows).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ..crossbar import quantize_ste
from ..nir.nodes import AbstractNode
from . import ir_drop
from .config import HardwareConfig

__all__ = ["HardwareAffine", "HardwareConv2d", "PreparedAffine"]


class PreparedAffine(AbstractNode):
    """A hardware layer with its read matrix computed (used inside the time loop)."""

    W: Float[Array, "n_in n_out"]
    var: Float[Array, "n_in n_out"] | None
    bias: Float[Array, " n_out"]
    out_scale: float = eqx.field(static=True)
    config: HardwareConfig = eqx.field(static=True)
    x_scale: float = eqx.field(static=True)
    conv: tuple | None = eqx.field(static=True, default=None)

    def _mvm(self, x, key):
        cfg = self.config
        v = x * (cfg.v_read / self.x_scale)
        if cfg.dac_bits is not None:
            half = 2 ** (cfg.dac_bits - 1)
            v = quantize_ste(v, -cfg.v_read, cfg.v_read / half, 2 * half)
        i = v @ self.W
        if self.var is not None and key is not None:
            var = (v * v) @ self.var
            pos = var > 0
            std = jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)
            i = i + cfg.device.read_sigma * std * jax.random.normal(key, i.shape, i.dtype)
        if cfg.adc_bits is not None:
            half = 2 ** (cfg.adc_bits - 1)
            dev = cfg.device
            fs = cfg.adc_range or self.W.shape[0] * cfg.v_read * (dev.G_max - dev.G_min)
            i = quantize_ste(i, -fs, fs / half, 2 * half)
        return i * self.out_scale + self.bias.reshape((1,) * (i.ndim - 1) + (-1,))

    def step(self, state, x, dt, key=None):
        if self.conv is None:
            return state, self._mvm(x, key)
        (kh, kw), stride, padding, dilation = self.conv
        p = jax.lax.conv_general_dilated_patches(
            x,
            (kh, kw),
            stride,
            [(q, q) for q in padding],
            rhs_dilation=dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        y = self._mvm(jnp.moveaxis(p, 1, -1), key)
        return state, jnp.moveaxis(y, -1, 1)


class HardwareAffine(AbstractNode):
    """A layer on RRAM crossbars (see the module docstring).

    **Fields:** `u` ``[2, n_in, n_out]`` (the cells' normalised conductances; trained in
    fine-tuning), `target` (the conductances the last programming aimed at), `bias`
    ``[n_out]`` (digital), `stuck` (bool mask of faulty cells) and `stuck_u` (their
    normalised conductance), `config` (static
    :class:`HardwareConfig`), `w_scale` (weight units per ``G_max - G_min``), `x_scale`
    (the input of full-scale voltage ``v_read``), `training` (static: quantise ``u`` to
    the levels and inject programming noise in the forward pass), `noise_scale` (static:
    the injected noise's standard deviation in units of the device's write sigma).
    """

    u: Float[Array, "2 n_in n_out"]
    target: Float[Array, "2 n_in n_out"]
    bias: Float[Array, " n_out"]
    stuck: Bool[Array, "2 n_in n_out"]
    stuck_u: Float[Array, "2 n_in n_out"]
    config: HardwareConfig = eqx.field(static=True)
    w_scale: float = eqx.field(static=True)
    x_scale: float = eqx.field(static=True, default=1.0)
    training: bool = eqx.field(static=True, default=False)
    noise_scale: float = eqx.field(static=True, default=1.0)
    stateful: ClassVar[bool] = False

    @property
    def g_range(self) -> float:
        return self.config.device.G_max - self.config.device.G_min

    def conductances(self, key=None) -> Float[Array, "2 n_in n_out"]:
        """``G`` (S) at read time: levels and injected write noise in training mode,
        drift, stuck cells."""
        cfg, dev = self.config, self.config.device
        u = self.u
        if self.training:
            if cfg.quantize_levels:
                u = quantize_ste(u, 0.0, 1.0 / (dev.n_levels - 1), dev.n_levels)
            if key is not None and cfg.program_noise:
                sigma = cfg.pulse.c2c_sigma if cfg.pulse is not None else dev.write_sigma
                u = u + self.noise_scale * sigma * jax.random.normal(key, u.shape, u.dtype)
        G = dev.G_min + u * self.g_range
        if cfg.drift_time is not None:
            G = dev.drift(G, cfg.drift_time)
        G_stuck = dev.G_min + jax.lax.stop_gradient(self.stuck_u) * self.g_range
        return jnp.where(self.stuck, G_stuck, G)

    def read_matrix(self, key=None) -> Float[Array, "n_in n_out"]:
        """``M_pos - M_neg`` (S): the matrix ``I = v M`` of the arrays (IR drop included)."""
        G = self.conductances(key)
        cfg = self.config
        if cfg.r_wire is None:
            return G[0] - G[1]
        kw = {"sweeps": cfg.ir_sweeps} if cfg.ir_mode == "fast" else {}
        M = [ir_drop.tiled_effective_conductance(g, cfg.r_wire, cfg.tile, **kw) for g in G]
        return M[0] - M[1]

    def effective_affine(
        self, key=None
    ) -> tuple[Float[Array, "n_out n_in"], Float[Array, " n_out"]]:
        """``(W, b)`` of the noiseless read in the layer's units (NIR convention)."""
        out_scale = self.x_scale * self.w_scale / self.g_range
        return (self.read_matrix(key) * out_scale).T, self.bias

    def prepare(self, key=None) -> PreparedAffine:
        G = self.conductances(key)
        var = (G[0] ** 2 + G[1] ** 2) if self.config.read_noise else None
        return PreparedAffine(
            W=self.read_matrix(key),
            var=var,
            bias=self.bias,
            out_scale=self.x_scale * self.w_scale / (self.config.v_read * self.g_range),
            config=self.config,
            x_scale=self.x_scale,
            conv=self._conv(),
        )

    def _conv(self):
        return None

    def step(self, state, x, dt, key=None):
        k1 = k2 = None
        if key is not None:
            k1, k2 = jax.random.split(key)
        return self.prepare(k1).step(state, x, dt, k2)


class HardwareConv2d(HardwareAffine):
    """A ``Conv2d`` on crossbars: rows are the ``c_in kh kw`` patch entries (in the
    order of `jax.lax.conv_general_dilated_patches`), columns the output channels."""

    kernel: tuple[int, int] = eqx.field(static=True, default=(1, 1))
    stride: tuple[int, int] = eqx.field(static=True, default=(1, 1))
    padding: tuple[int, int] = eqx.field(static=True, default=(0, 0))
    dilation: tuple[int, int] = eqx.field(static=True, default=(1, 1))

    def _conv(self):
        return (self.kernel, self.stride, self.padding, self.dilation)

    def effective_affine(self, key=None):
        W, b = super().effective_affine(key)
        c_out = W.shape[0]
        return W.reshape((c_out, -1) + tuple(self.kernel)), b
