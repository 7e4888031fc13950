"""The roofline helpers: operation counts from the jaxpr and the estimate built on them."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks import _roofline as R


def test_counts_elementwise_ops_through_scan_and_grad():
    def f(x):
        def body(c, _):
            return jnp.exp(-c) * 2.0 + 1.0, None

        c, _ = jax.lax.scan(body, x, None, length=5)
        return c

    counts = R.op_counts(f, jnp.ones(3))
    assert counts["exp"] == 15
    assert counts["mul"] == 15
    assert counts["add"] == 15
    grad_counts = R.op_counts(jax.grad(lambda x: jnp.sum(f(x))), jnp.ones(3))
    # the backward pass reuses the forward's exponentials: no new exp per step
    assert grad_counts["exp"] == 15
    assert grad_counts["mul"] > counts["mul"]


def test_matmul_counted_in_flops_and_classes_sum():
    counts = R.op_counts(lambda a, b: jnp.tanh(a @ b), jnp.ones((4, 6)), jnp.ones((6, 5)))
    assert counts["dot_general"] == 2 * 4 * 6 * 5
    assert counts["tanh"] == 20
    cls = R.by_class(counts)
    assert cls["matmul"] == 240 and cls["transcendental"] == 20
    assert sum(cls.values()) == sum(counts.values())


def test_custom_jvp_and_cond_bodies_are_counted():
    @jax.custom_jvp
    def g(x):
        return jnp.log1p(jnp.exp(x))

    g.defjvp(lambda p, t: (g(p[0]), jax.nn.sigmoid(p[0]) * t[0]))

    def f(x):
        return jax.lax.cond(x[0] > 0, lambda x: g(x), lambda x: x, x)

    counts = R.op_counts(f, jnp.ones(7))
    assert counts["exp"] == 7 and counts["log1p"] == 7


def test_roofline_charges_each_class_at_its_rate():
    counts = {"exp": 10, "expm1": 4, "div": 3, "mul": 5, "dot_general": 100, "reshape": 9}
    rates = {"exp": 2.0, "div": 3.0, "arithmetic": 1.0, "matmul_flop": 0.5}
    est = R.roofline(counts, rates)
    assert est["transcendental"] == pytest.approx(14 * 2.0)  # expm1 at exp's rate
    assert est["division"] == pytest.approx(9.0)
    assert est["arithmetic"] == pytest.approx(5.0)
    assert est["matmul"] == pytest.approx(50.0)
    assert est["movement"] == 0.0
    assert est["total"] == pytest.approx(28 + 9 + 5 + 50)


def test_throughput_measures_positive_rates():
    thr = R.throughput(["exp", "not_a_primitive"], 4096, (8, 16, 4), reps=4, repeats=3)
    assert set(thr) == {"arithmetic", "exp", "matmul_flop"}
    assert all(v > 0 for v in thr.values())
