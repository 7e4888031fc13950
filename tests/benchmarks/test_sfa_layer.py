"""The SFA benchmarks' layer start and read settings (``benchmarks.sfa.learn_layer``):
imprinting the first samples, learning the rest, reading with or without the
homeostatic offsets."""

import jax
import numpy as np
import pytest

from benchmarks import sfa as S
from benchmarks._context import Context


def _cfg(**over):
    cfg = S._config(Context(name="sfa", quick=True, out="."), **over)
    cfg.update(n_levels=16)
    return cfg


def _setup(cfg, n_out=4, n_in=12, n=30):
    layer = S._layer(cfg, n_in, n_out, 0.3)
    x = np.asarray(jax.random.uniform(jax.random.key(0), (n, n_in)))
    return layer, x


def test_imprint_starts_columns_on_the_first_samples_and_learns_the_rest():
    cfg = _cfg(layer_init="imprint", p_pot=0.0, p_dep=0.0)  # no STDP: the start stays
    layer, x = _setup(cfg)
    st, read, lout, _ = S.learn_layer(cfg, layer, x, jax.random.key(1))
    dev = layer.synapse
    levels = (np.asarray(st.syn.G) - dev.G_min) / (dev.G_max - dev.G_min) * 15
    np.testing.assert_allclose(levels, np.rint(x[:4].T * 15), atol=1e-4)
    assert len(lout["spikes"]) == len(x) - 4  # the imprinted samples are not learned again
    assert np.any(np.asarray(st.h) > 0)  # homeostasis acted while learning
    np.testing.assert_array_equal(read.h, st.h)  # read_offsets=True (default) keeps them


def test_read_without_offsets_zeroes_only_h():
    cfg = _cfg(**S.IMPRINTED_COSINE)
    layer, x = _setup(cfg)
    st, read, _, _ = S.learn_layer(cfg, layer, x, jax.random.key(1))
    assert np.any(np.asarray(st.h) > 0) and not np.any(np.asarray(read.h))
    np.testing.assert_array_equal(read.syn.G, st.syn.G)


def test_bad_layer_start():
    layer, x = _setup(_cfg())
    with pytest.raises(ValueError, match="imprint"):
        S.learn_layer(_cfg(layer_init="imprint"), layer, x[:4], jax.random.key(1))
    with pytest.raises(ValueError, match="layer_init"):
        S.learn_layer(_cfg(layer_init="kmeans"), layer, x, jax.random.key(1))
