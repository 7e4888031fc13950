"""Hand-derived adjoint (reverse-mode derivative) of one MIF exponential-midpoint step.

:func:`mif_step_adjoint` computes the same step as ``memjax.neurons.mif._step`` (the
exponential midpoint splitting of the module docstring of :mod:`memjax.neurons.mif`)
inside a `jax.custom_vjp`: the forward keeps the step's exponentials (the two sigmoids
per memristor and sub-step, the ``expm1`` factors of the filter, the membrane and the
memristor update) and the backward pass applies the chain rule to them directly,
instead of differentiating through the exponentials and the series branches. It is a
per-step function, so `lax.scan` over it and `jax.checkpoint` (which reruns the forward
in the backward pass) work as for any JAX function.

Notation (one memristor, ``s`` its polarity; ``h`` the step, ``q = h / (2 C)``):

    A = (V - V_on) / v_t,  B = -(V + V_off) / v_t,  p_on = sigma(A),  p_off = sigma(B)
    w = (1 - x) p_on - x p_off,  S = p_on + p_off,  k = S h / tau
    x' = clip(x + (h / tau) w phi1(k), 0, 1),       G(x) = x / R_on + (1 - x) / R_off
    membrane: v' = v + (n / g - v) m + (i_1 - i_0) q phi2(z),  z = g q,  m = 1 - e^-z,
              n = i_0 + G_1 E_1 + G_2 E_2,  g = G_1 + G_2

with ``sigma' = sigma (1 - sigma)``, ``dm/dz = 1 - m``, ``phi1'(k) = (1 - (1 + k)
phi1(k)) / k`` and ``phi2'(z) = (phi1(z) - 2 phi2(z)) / z`` (Taylor series below a cut,
where the closed forms cancel). The derivative of the clip is the indicator of
``(0, 1)``. The cotangents of parameters are summed over the axes they were broadcast
along; where a parameter is not differentiated (e.g. `memjax.models.memprop.MEMprop`'s
frozen neurons) its cotangent is dead code that XLA removes. The forward's residuals and
the backward's intermediate cotangents pass through `jax.lax.optimization_barrier`, so
that each is computed once instead of being recomputed inside every fused consumer.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from ._phi import phi2 as _phi2
from ._phi import series as _series

__all__ = ["mif_step_adjoint"]

# Taylor coefficients of phi2'(z)
_DPHI2 = tuple((n + 1) * (-1) ** (n + 1) / math.factorial(n + 3) for n in range(6))
# phi1'(z) = sum_n (-1)^(n+1) (n + 1) z^n / (n + 2)!
_DPHI1 = tuple((-1) ** (n + 1) * (n + 1) / math.factorial(n + 2) for n in range(6))


def _f64(z) -> bool:
    return z.dtype == jnp.float64


def _phi1_pair(k, ek):
    """``phi1(k)`` and ``phi1'(k)`` given ``ek = 1 - exp(-k)``."""
    small = k < 1e-4
    ks = jnp.where(small, 1.0, k)
    f = jnp.where(small, 1.0 - 0.5 * k + k * k / 6.0, ek / ks)
    small_d = k < (0.01 if _f64(k) else 0.1)
    ksd = jnp.where(small_d, 1.0, k)
    df = jnp.where(small_d, _series(k, _DPHI1), (1.0 - (1.0 + ksd) * f) / ksd)
    return f, df


def _dphi2(z, m, p2):
    """``phi2'(z) = (phi1(z) - 2 phi2(z)) / z`` with ``phi1 = m / z``; series below 0.1
    (float32) / 0.005 (float64)."""
    small = z < (0.005 if _f64(z) else 0.1)
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, _series(z, _DPHI2), (m / zs - 2.0 * p2) / zs)


def _unb(x, shape):
    """Sum ``x`` over the axes along which an array of ``shape`` was broadcast to it."""
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    axes = tuple(d for d, n in enumerate(shape) if n == 1 and x.shape[d] != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _sig(V, Von, Voff, vt):
    A = (V - Von) / vt
    B = -(V + Voff) / vt
    return jax.nn.sigmoid(A), jax.nn.sigmoid(B), A, B


def _forward(s1, s2, a, i, v, x1, x2, u, h, C, E1, E2, tau_a, M1, M2):
    """The step and its residuals (``M = (R_on, R_off, V_on, V_off, tau, v_t)``)."""
    h2 = 0.5 * h
    r = h2 / tau_a
    em = -jnp.expm1(-r)
    c = r * (1.0 - em)
    a_m = a + (u - a) * em
    i_m = i + (u - i) * em + (a - u) * c
    a_e = a_m + (u - a_m) * em
    i_e = i_m + (u - i_m) * em + (a_m - u) * c
    q = h2 / C
    res = dict(em=em, c=c, r=r, q=q, a_m=a_m, i_m=i_m, i_e=i_e)
    gons = (1.0 / M1[0], 1.0 / M2[0])
    goffs = (1.0 / M1[1], 1.0 / M2[1])
    xm = []
    for k, (s, x, E, M) in enumerate(((s1, x1, E1, M1), (s2, x2, E2, M2))):
        pon, poff, _, _ = _sig(s * (v - E), M[2], M[3], M[5])
        w = (1.0 - x) * pon - x * poff
        y = x + h2 * (w / M[4])
        xm.append(jnp.clip(y, 0.0, 1.0))
        res[f"pre{k}"] = (pon, poff, w, y)
    vmid, res["mem1"] = _membrane_fwd(v, i, i_m, xm[0], xm[1], q, E1, E2, gons, goffs)
    xe = []
    for k, (s, x, E, M) in enumerate(((s1, x1, E1, M1), (s2, x2, E2, M2))):
        pon, poff, A, B = _sig(s * (vmid - E), M[2], M[3], M[5])
        S = pon + poff
        ht = h / M[4]
        kk = S * ht
        f1, df1 = _phi1_pair(kk, -jnp.expm1(-kk))
        w = (1.0 - x) * pon - x * poff
        y = x + ht * w * f1
        xe.append(jnp.clip(y, 0.0, 1.0))
        res[f"upd{k}"] = (pon, poff, S, f1, df1, w, y)
    v_e, res["mem2"] = _membrane_fwd(vmid, i_m, i_e, xe[0], xe[1], q, E1, E2, gons, goffs)
    res.update(xm=tuple(xm), xe=tuple(xe), vmid=vmid, gons=gons, goffs=goffs)
    return (a_e, i_e, v_e, xe[0], xe[1]), res


def _membrane_fwd(v, i0, i1, xa, xb, q, E1, E2, gons, goffs):
    G1 = xa * gons[0] + (1.0 - xa) * goffs[0]
    G2 = xb * gons[1] + (1.0 - xb) * goffs[1]
    g = G1 + G2
    z = g * q
    m = -jnp.expm1(-z)
    vinf = (i0 + G1 * E1 + G2 * E2) / g
    p2 = _phi2(z, m)
    out = v + (vinf - v) * m + (i1 - i0) * q * p2
    return out, (v, i0, i1, G1, G2, g, z, m, vinf, p2)


def _membrane_bwd(o, res, q):
    """Cotangents of ``v``, ``i0``, ``i1``, ``n`` (the numerator of ``v_inf``), ``g`` and
    ``q`` for an output cotangent ``o`` (the ``n`` and ``g`` parts still to be passed
    on to the conductances and batteries)."""
    v, i0, i1, G1, G2, g, z, m, vinf, p2 = res
    d = i1 - i0
    n_bar = o * m / g
    z_bar = o * (vinf - v) * (1.0 - m) + o * d * q * _dphi2(z, m, p2)
    g_bar = z_bar * q - n_bar * vinf
    q_bar = z_bar * g + o * d * p2
    di = o * q * p2
    return o * (1.0 - m), n_bar - di, di, n_bar, g_bar, q_bar


def _x_bwd(y_bar, x, pon, poff, w, ht, f1=None, df1=None, S=None):
    """Cotangents of one memristor update ``y = x + ht w f1(S ht)`` (``f1 = 1`` for
    the predictor) w.r.t. ``x``, ``A``, ``B`` and ``ht``."""
    if f1 is None:
        w_bar = y_bar * ht
        ht_bar = y_bar * w
        pon_bar, poff_bar = w_bar * (1.0 - x), -w_bar * x
    else:
        w_bar = y_bar * ht * f1
        k_bar = y_bar * ht * w * df1
        ht_bar = y_bar * w * f1 + k_bar * S
        S_bar = k_bar * ht
        pon_bar, poff_bar = w_bar * (1.0 - x) + S_bar, S_bar - w_bar * x
    x_bar = y_bar - w_bar * (pon + poff)
    return x_bar, pon_bar * pon * (1.0 - pon), poff_bar * poff * (1.0 - poff), ht_bar


def _conductance_bwd(n_bar, g_bar, res, xs, E1, E2, gons, goffs, acc):
    """Pass the membrane's ``n`` and ``g`` cotangents on to the memristor states
    (returned) and to ``E1``, ``E2``, ``1/R_on``, ``1/R_off`` (accumulated in ``acc``)."""
    G1, G2 = res[3], res[4]
    out = []
    for k, (G, E, x) in enumerate(((G1, E1, xs[0]), (G2, E2, xs[1]))):
        G_bar = n_bar * E + g_bar
        acc[f"E{k}"] = acc[f"E{k}"] + n_bar * G
        acc[f"gon{k}"] = acc[f"gon{k}"] + G_bar * x
        acc[f"goff{k}"] = acc[f"goff{k}"] + G_bar * (1.0 - x)
        out.append(G_bar * (gons[k] - goffs[k]))
    return out


def _barrier(x):
    """Materialise ``x`` once (`jax.lax.optimization_barrier`): without it XLA's CPU
    fusion duplicates the shared arithmetic of the backward pass into each consumer."""
    return jax.lax.optimization_barrier(x)


def _clip_bwd(ct, y):
    return jnp.where((y > 0.0) & (y < 1.0), ct, 0.0)


def _sig_params_bwd(A_bar, B_bar, V, M, acc, k):
    """Cotangent of ``V`` from those of ``A`` and ``B``; ``V_on``, ``V_off``, ``v_t``
    parts into ``acc``."""
    Von, Voff, vt = M[2], M[3], M[5]
    acc[f"Von{k}"] = acc[f"Von{k}"] - A_bar / vt
    acc[f"Voff{k}"] = acc[f"Voff{k}"] - B_bar / vt
    A = (V - Von) / vt
    B = -(V + Voff) / vt
    acc[f"vt{k}"] = acc[f"vt{k}"] - (A_bar * A + B_bar * B) / vt
    return (A_bar - B_bar) / vt


def _backward(s1, s2, args, res, ct):
    a, i, v, x1, x2, u, h, C, E1, E2, tau_a, M1, M2 = args
    ca, ci, cv, cx1, cx2 = ct
    em, c, r, q = res["em"], res["c"], res["r"], res["q"]
    gons, goffs, vmid = res["gons"], res["goffs"], res["vmid"]
    zero = jnp.zeros_like(cv)
    acc = {f"{n}{k}": zero for n in ("E", "gon", "goff", "Von", "Voff", "vt") for k in (0, 1)}
    acc.update(q=zero, h=zero, tau0=zero, tau1=zero)
    Ms, ss, Es, xs = (M1, M2), (s1, s2), (E1, E2), (x1, x2)
    # second half of the membrane
    vmid_bar, im_bar, ie_bar, n_bar, g_bar, q_bar = _membrane_bwd(cv, res["mem2"], q)
    acc["q"] = acc["q"] + q_bar
    xe_bar = _conductance_bwd(n_bar, g_bar, res["mem2"], res["xe"], E1, E2, gons, goffs, acc)
    # memristors over the whole step at the mid-step voltage
    vmid_bar, im_bar, ie_bar, xe_bar = _barrier((vmid_bar, im_bar, ie_bar, xe_bar))
    x_bar = []
    for k, cx in enumerate((cx1, cx2)):
        pon, poff, S, f1, df1, w, y = res[f"upd{k}"]
        y_bar = _clip_bwd(cx + xe_bar[k], y)
        ht = h / Ms[k][4]
        xb, A_bar, B_bar, ht_bar = _x_bwd(y_bar, xs[k], pon, poff, w, ht, f1, df1, S)
        x_bar.append(xb)
        V_bar = _sig_params_bwd(A_bar, B_bar, ss[k] * (vmid - Es[k]), Ms[k], acc, k)
        vmid_bar = vmid_bar + ss[k] * V_bar
        acc[f"E{k}"] = acc[f"E{k}"] - ss[k] * V_bar
        acc[f"tau{k}"] = acc[f"tau{k}"] - ht_bar * ht / Ms[k][4]
        acc["h"] = acc["h"] + ht_bar / Ms[k][4]
    # first half of the membrane
    vmid_bar, im_bar, x_bar = _barrier((vmid_bar, im_bar, x_bar))
    v_bar, i_bar, im1_bar, n_bar, g_bar, q_bar = _membrane_bwd(vmid_bar, res["mem1"], q)
    im_bar = im_bar + im1_bar
    acc["q"] = acc["q"] + q_bar
    xm_bar = _conductance_bwd(n_bar, g_bar, res["mem1"], res["xm"], E1, E2, gons, goffs, acc)
    v_bar, i_bar, im_bar, xm_bar = _barrier((v_bar, i_bar, im_bar, xm_bar))
    # predictor
    for k in (0, 1):
        pon, poff, w, y = res[f"pre{k}"]
        ht = 0.5 * h / Ms[k][4]
        xb, A_bar, B_bar, ht_bar = _x_bwd(_clip_bwd(xm_bar[k], y), xs[k], pon, poff, w, ht)
        x_bar[k] = x_bar[k] + xb
        V_bar = _sig_params_bwd(A_bar, B_bar, ss[k] * (v - Es[k]), Ms[k], acc, k)
        v_bar = v_bar + ss[k] * V_bar
        acc[f"E{k}"] = acc[f"E{k}"] - ss[k] * V_bar
        acc[f"tau{k}"] = acc[f"tau{k}"] - ht_bar * ht / Ms[k][4]
        acc["h"] = acc["h"] + 0.5 * ht_bar / Ms[k][4]
    # synaptic filter (two half steps sharing em and c)
    v_bar, i_bar, im_bar, x_bar = _barrier((v_bar, i_bar, im_bar, x_bar))
    a_m, i_m = res["a_m"], res["i_m"]
    ci_e = ci + ie_bar
    im_t = ci_e * (1.0 - em) + im_bar
    am_t = ca * (1.0 - em) + ci_e * c
    u_bar = (ca + am_t) * em + (ci_e + im_t) * (em - c)
    em_bar = ca * (u - a_m) + ci_e * (u - i_m) + am_t * (u - a) + im_t * (u - i)
    c_bar = ci_e * (a_m - u) + im_t * (a - u)
    i_bar = i_bar + im_t * (1.0 - em)
    a_bar = am_t * (1.0 - em) + im_t * c
    em_bar, c_bar = _unb(em_bar, jnp.shape(r)), _unb(c_bar, jnp.shape(r))
    r_bar = (em_bar + c_bar * (1.0 - r)) * (1.0 - em)
    q_red = _unb(acc["q"], jnp.shape(q))

    def out(x, ref):
        shape = jnp.shape(ref)
        x = jnp.broadcast_to(x, jnp.broadcast_shapes(jnp.shape(x), shape))
        return _unb(x, shape).astype(jnp.result_type(ref))

    h_bar = out(0.5 * r_bar / tau_a, h) + out(0.5 * q_red / C, h) + out(acc["h"], h)
    M_bar = []
    for k in (0, 1):
        M, gon, goff = Ms[k], gons[k], goffs[k]
        M_bar.append(
            (
                out(-_unb(acc[f"gon{k}"], jnp.shape(gon)) * gon * gon, M[0]),
                out(-_unb(acc[f"goff{k}"], jnp.shape(goff)) * goff * goff, M[1]),
                out(acc[f"Von{k}"], M[2]),
                out(acc[f"Voff{k}"], M[3]),
                out(acc[f"tau{k}"], M[4]),
                out(acc[f"vt{k}"], M[5]),
            )
        )
    return (
        out(a_bar, a),
        out(i_bar, i),
        out(v_bar, v),
        out(x_bar[0], x1),
        out(x_bar[1], x2),
        out(u_bar, u),
        h_bar,
        out(-q_red * q / C, C),
        out(acc["E0"], E1),
        out(acc["E1"], E2),
        out(-r_bar * r / tau_a, tau_a),
        M_bar[0],
        M_bar[1],
    )


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _core(s1, s2, a, i, v, x1, x2, u, h, C, E1, E2, tau_a, M1, M2):
    return _forward(s1, s2, a, i, v, x1, x2, u, h, C, E1, E2, tau_a, M1, M2)[0]


def _core_fwd(s1, s2, *args):
    out, res = _forward(s1, s2, *args)
    return out, _barrier((args, res))


def _core_bwd(s1, s2, saved, ct):
    args, res = saved
    return _backward(s1, s2, args, res, ct)


_core.defvjp(_core_fwd, _core_bwd)


def mif_step_adjoint(p, s, u, h):
    """One MIF step (``memjax.neurons.mif._step``'s scheme) with the hand-derived
    adjoint; ``p`` a `MIF`, ``s`` a `MIFState`, ``u`` the held input (A), ``h`` (s)."""
    from .mif import MIFState

    def mem(m):
        return tuple(
            jnp.asarray(getattr(m, f)) for f in ("R_on", "R_off", "V_on", "V_off", "tau", "v_t")
        )

    ps = tuple(jnp.asarray(x) for x in (p.C, p.E1, p.E2, p.tau_a))
    out = _core(
        float(p.polarity1),
        float(p.polarity2),
        s.a,
        s.i,
        s.v,
        s.x1,
        s.x2,
        jnp.asarray(u),
        jnp.asarray(h),
        *ps,
        mem(p.m1),
        mem(p.m2),
    )
    return MIFState(*out)
