"""Metaplastic optax transform, level-change counter, EWC (the quantisers: test_quantize.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memjax.learning.ewc import ewc_penalty, fisher_diagonal
from memjax.learning.metaplastic import (
    count_level_changes,
    metaplastic,
    metaplastic_adam,
    weight_matrices,
)
from memjax.learning.metaplastic import meta_factor as _meta_factor
from memjax.learning.quantize import quantize_levels

# One compilation per (n_levels, w_max) instead of op-by-op dispatch (fast tests).
meta_factor = jax.jit(_meta_factor, static_argnums=(3, 4))


def _np_meta_bnn(w, u, m):
    """The authors' rule (Laborieux et al. 2021 code): scale where sign(W) * m_t > 0."""
    f = 1.0 - np.tanh(m * np.abs(w)) ** 2
    return np.where(np.sign(w) * u > 0, f, 1.0)


def _np_meta_qnn(w, step, m, k, w_max):
    """Independent transcription: boundaries listed explicitly; the nearest one of the
    weight's interval decides; steps toward it are scaled by 1 - tanh^2(m d / h)."""
    levels = np.linspace(-w_max, w_max, k)
    bounds = (levels[:-1] + levels[1:]) / 2
    h = w_max / (k - 1)
    out = np.ones_like(w)
    for i, (wi, si) in enumerate(zip(w, step)):
        above, below = bounds[bounds > wi], bounds[bounds <= wi]
        cand = []  # (distance, direction) of the interval's boundaries
        if above.size:
            cand.append((above.min() - wi, 1.0))
        if below.size:
            cand.append((wi - below.max(), -1.0))
        dmin = min(c[0] for c in cand)
        for d, direction in cand:
            if d <= dmin and si * direction > 0:
                out[i] = 1 - np.tanh(m * d / h) ** 2
    return out


def test_bnn_factor_hand_values():
    w = jnp.array([0.5, 0.5, -0.5, -0.5, 2.0, -1.0])
    u = jnp.array([1.0, -1.0, -1.0, 1.0, 0.3, -0.2])  # gradient-direction updates
    got = np.asarray(meta_factor(w, -u, 1.0))
    f05 = 1 - np.tanh(0.5) ** 2  # 0.7864477...
    f2 = 1 - np.tanh(2.0) ** 2
    f1 = 1 - np.tanh(1.0) ** 2
    np.testing.assert_allclose(got, [f05, 1, f05, 1, f2, f1], rtol=1e-6)
    np.testing.assert_allclose(got, _np_meta_bnn(np.asarray(w), np.asarray(u), 1.0), rtol=1e-6)


def test_bnn_attenuation_only_toward_sign_change(getkey):
    w = jax.random.normal(getkey(), (400,)) * 2
    u = jax.random.normal(getkey(), (400,))
    tx = metaplastic(1.35)
    out, _ = tx.update(u, tx.init(w), w)
    ref = np.asarray(u) * _np_meta_bnn(np.asarray(w, np.float64), np.asarray(u), 1.35)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5)
    grow = np.sign(np.asarray(w)) * np.asarray(u) < 0  # descent step grows |W|
    assert np.array_equal(np.asarray(out)[grow], np.asarray(u)[grow])
    assert np.all(np.abs(np.asarray(out)[~grow]) < np.abs(np.asarray(u)[~grow]))


@pytest.mark.parametrize("k", [2, 5, 16])
def test_qnn_factor_matches_transcription(getkey, k):
    w = jax.random.uniform(getkey(), (300,), minval=-1.6, maxval=1.6)
    step = jax.random.normal(getkey(), (300,))
    got = np.asarray(meta_factor(w, step, 2.0, k, 1.3))
    ref = _np_meta_qnn(np.asarray(w, np.float64), np.asarray(step), 2.0, k, 1.3)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_qnn_two_levels_is_bnn(getkey):
    w = jax.random.normal(getkey(), (200,))
    s = jax.random.normal(getkey(), (200,))
    np.testing.assert_array_equal(meta_factor(w, s, 1.5, 2, 1.0), meta_factor(w, s, 1.5))


def test_qnn_hand_values():
    # 5 levels on [-1, 1]: levels -1, -.5, 0, .5, 1; boundaries +-.25, +-.75; h = .25.
    w = jnp.array([0.1, 0.4, 0.4, 0.6, 1.2, -1.2, -1.2, 0.5, 0.5, 0.0])
    s = jnp.array([1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 0.0, 1.0, -1.0])
    f = lambda d: 1 - np.tanh(2.0 * d / 0.25) ** 2
    np.testing.assert_allclose(
        meta_factor(w, s, 2.0, 5),
        # 0.1 up: toward +.25 (nearest), d = .15; 0.4 up: away from nearest (.25) -> 1;
        # 0.4 down: toward .25, d = .15; 0.6 down: toward .75? no, nearest is .75 (d .15)
        # and down moves away -> 1; 1.2 up: away from .75 -> 1; -1.2 up: toward -.75,
        # d = .45; -1.2 down -> 1; 0.5 no step -> 1; 0.5 up (centre): d = .25; 0 down: .25.
        [f(0.15), 1.0, f(0.15), 1.0, 1.0, f(0.45), 1.0, 1.0, f(0.25), f(0.25)],
        rtol=1e-5,
    )


def test_m_zero_is_adam_bit_for_bit(getkey):
    params = {"w": jax.random.normal(getkey(), (7, 5)), "b": jax.random.normal(getkey(), (5,))}
    ref_opt, opt = optax.adam(0.005), metaplastic_adam(0.005, 0.0)
    chained = optax.chain(optax.scale_by_adam(), metaplastic(0.0, 4), optax.scale(-0.005))
    p_ref = p = p_ch = params
    s_ref, s, s_ch = ref_opt.init(params), opt.init(params), chained.init(params)
    up_ref, up, up_ch = (jax.jit(o.update) for o in (ref_opt, opt, chained))
    for _ in range(6):
        g = jax.tree.map(lambda a: jax.random.normal(getkey(), a.shape), params)
        u_ref, s_ref = up_ref(g, s_ref, p_ref)
        u, s = up(g, s, p)
        u_ch, s_ch = up_ch(g, s_ch, p_ch)
        p_ref, p, p_ch = (
            optax.apply_updates(a, b) for a, b in ((p_ref, u_ref), (p, u), (p_ch, u_ch))
        )
    for k in params:
        np.testing.assert_array_equal(np.asarray(p[k]), np.asarray(p_ref[k]))
        np.testing.assert_array_equal(np.asarray(p_ch[k]), np.asarray(p_ref[k]))


def test_adam_metaplastic_step_matches_numpy():
    """One step of the authors' Adam-meta by hand: p -= lr * m_hat * decay / (sqrt(v_hat)+eps)."""
    w = np.array([0.8, -0.3, 0.1, -2.0], np.float32)
    g = np.array([0.5, 0.2, -0.4, 0.1], np.float32)
    lr, m = 0.01, 1.5
    m1, v1 = 0.1 * g, 0.001 * g * g
    mh, vh = m1 / 0.1, v1 / 0.001
    decay = np.where(np.sign(w) * m1 > 0, 1 - np.tanh(m * np.abs(w)) ** 2, 1.0)
    ref = w - lr * mh * decay / (np.sqrt(vh) + 1e-8)
    opt = metaplastic_adam(lr, m)
    u, _ = opt.update(jnp.asarray(g), opt.init(jnp.asarray(w)), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(w + u), ref, rtol=1e-6)


def test_m_schedule_follows_the_update_count(getkey):
    """m as a schedule: update i uses m(i): the same updates as the constant-m
    transformation of that step (Adam's state shared), under jit."""
    params = jax.random.uniform(getkey(), (6, 4), minval=-1.2, maxval=1.2)
    sched = optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(2.5)], [2])
    tx = metaplastic(sched, 5)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for i in range(4):
        u = jax.random.normal(getkey(), params.shape)
        got, state = update(u, state, params)
        const = metaplastic(float(sched(i)), 5)
        want, _ = const.update(u, const.init(params), params)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        if i < 2:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(u))  # m = 0
        params = params - 0.1 * u
    assert int(state.count) == 4


def test_mask_leaves_other_leaves_untouched(getkey):
    params = {"w": jax.random.normal(getkey(), (4, 3)), "bn": jax.random.normal(getkey(), (3,))}
    u = jax.tree.map(lambda a: jnp.ones_like(a), params)
    tx = metaplastic(3.0, mask=weight_matrices)
    out, _ = tx.update(u, tx.init(params), params)
    np.testing.assert_array_equal(out["bn"], u["bn"])
    assert not np.array_equal(out["w"], u["w"])


def test_m_scale_gives_each_leaf_its_own_m(getkey):
    """m_scale (c_i per leaf): leaf i gets exactly the updates of metaplastic(c_i m);
    c = 0 leaves a leaf untouched; a function of the params works as a pytree does."""
    params = (
        jax.random.uniform(getkey(), (6, 4), minval=-1.2, maxval=1.2),
        jax.random.uniform(getkey(), (4, 3), minval=-1.2, maxval=1.2),
        jax.random.uniform(getkey(), (3, 2), minval=-1.2, maxval=1.2),
    )
    u = tuple(jax.random.normal(getkey(), p.shape) for p in params)
    for scale in ((1.0, 2.0, 0.0), lambda ps: (1.0, 2.0, 0.0)):
        tx = metaplastic(1.5, 5, m_scale=scale)
        got, _ = jax.jit(tx.update)(u, tx.init(params), params)
        for c, g, ui, p in zip((1.0, 2.0, 0.0), got, u, params):
            one = metaplastic(1.5 * c, 5)
            want, _ = one.update(ui, one.init(p), p)
            np.testing.assert_array_equal(np.asarray(g), np.asarray(want))
        np.testing.assert_array_equal(np.asarray(got[2]), np.asarray(u[2]))
    assert not np.array_equal(np.asarray(got[0]), np.asarray(got[1]))
    # With a schedule and inside metaplastic_adam.
    sched = optax.constant_schedule(1.5)
    a = metaplastic_adam(0.01, sched, 5, m_scale=(1.0, 2.0, 0.0))
    b = metaplastic_adam(0.01, 1.5, 5, m_scale=(1.0, 2.0, 0.0))
    ga, _ = a.update(u, a.init(params), params)
    gb, _ = b.update(u, b.init(params), params)
    for x, y in zip(ga, gb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match="m_scale must be finite and >= 0"):
        metaplastic(1.0, 5, m_scale=(1.0, -2.0))
    with pytest.raises(ValueError, match="mask or m_scale"):
        metaplastic(1.0, 5, m_scale=(1.0, 2.0), mask=(True, True))
    with pytest.raises(ValueError, match="m_scale must have the structure"):
        tx = metaplastic(1.0, 5, m_scale=(1.0, 2.0))
        tx.update(u, tx.init(params), params)


def test_bad_parameters():
    with pytest.raises(ValueError, match="m must be"):
        metaplastic(-0.1)
    with pytest.raises(ValueError, match="m must be"):
        metaplastic_adam(0.01, float("nan"))
    with pytest.raises(ValueError, match="metaplastic: m must be a finite number"):
        metaplastic("strong")
    with pytest.raises(ValueError, match="n_levels"):
        metaplastic(1.0, n_levels=1)
    with pytest.raises(ValueError, match="n_levels"):
        quantize_levels(jnp.zeros(3), 1)
    with pytest.raises(ValueError, match="w_max"):
        metaplastic(1.0, 3, w_max=0.0)
    with pytest.raises(ValueError, match="params"):
        tx = metaplastic(1.0)
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_count_level_changes():
    w = {"a": jnp.array([0.1, -0.1, 0.6, 0.9])}
    tx = count_level_changes(3)  # levels -1, 0, 1; boundaries +-0.5
    st = tx.init(w)
    steps = [jnp.array([0.3, 0.0, -0.2, 0.05]), jnp.array([0.2, -0.5, 0.0, 0.0])]
    for u in steps:
        out, st = tx.update({"a": u}, st, w)
        np.testing.assert_array_equal(out["a"], u)
        w = {"a": w["a"] + u}
    # 0.1 -> 0.4 -> 0.6: one change; -0.1 -> -0.6: one; 0.6 -> 0.4: one; 0.9 -> 0.95: none.
    np.testing.assert_array_equal(st.counts["a"], [1, 1, 1, 0])


def test_ewc_fisher_and_penalty():
    # Logistic regression, log p(y|x) = y log s(wx) + (1-y) log(1-s(wx)); d/dw = (y - s) x.
    x = jnp.array([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.3]])
    y = jnp.array([1.0, 0.0, 1.0])
    w = jnp.array([0.2, -0.4])

    def ll(p, xi, yi):
        s = jax.nn.sigmoid(xi @ p)
        return yi * jnp.log(s) + (1 - yi) * jnp.log(1 - s)

    F = fisher_diagonal(ll, w, x, y, batch_size=2)
    s = 1 / (1 + np.exp(-np.asarray(x) @ np.asarray(w)))
    g = (np.asarray(y) - s)[:, None] * np.asarray(x)
    np.testing.assert_allclose(F, np.mean(g * g, axis=0), rtol=1e-5)
    pen = ewc_penalty({"w": w}, {"w": jnp.zeros(2)}, {"w": F}, 3.0)
    np.testing.assert_allclose(pen, 1.5 * np.sum(np.asarray(F) * np.asarray(w) ** 2), rtol=1e-6)
