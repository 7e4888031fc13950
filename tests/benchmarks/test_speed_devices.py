"""benchmarks.speed_devices: the matched-accuracy machinery on two neurons."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def test_candidates_converge_to_the_reference():
    from benchmarks import speed_devices as sd

    pop = sd._population(2, 0)
    v_ref, _ = sd._reference(pop, (2,))
    assert v_ref.shape == (int(round(sd.T_STOP / sd.DT_OUT)) + 1, 2)
    assert np.ptp(v_ref) > 0.01  # a real excursion
    p32 = sd._cast(pop, jnp.float32)
    s0 = p32.init_state((2,), jnp.float32)
    for name, fn in sd.CANDIDATES.items():
        errs = [sd._err(jax.jit(fn, static_argnums=2)(p32, s0, sub), v_ref) for sub in (1, 10)]
        assert errs[1] < errs[0] or errs[1] < 1e-4, (name, errs)
        assert errs[1] < 5e-2, (name, errs)


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not on PATH")
def test_ngspice_error_against_the_reference(tmp_path):
    from benchmarks import speed_devices as sd

    pop = sd._population(2, 0)
    v_ref, _ = sd._reference(pop, (2,))
    err, wall = sd._ngspice(pop, 2, np.array([0, 1]), v_ref, tmp_path, 600.0)
    assert err is not None and 0 < err < 1e-2 and wall > 0


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not on PATH")
def test_ngspice_past_its_time_limit_gives_a_lower_bound(tmp_path, monkeypatch):
    from benchmarks import speed_devices as sd

    class Ctx:
        seed = 0

        @staticmethod
        def log(msg):
            pass

    monkeypatch.setattr(sd, "NGSPICE_TIMEOUT_S", 1e-3)
    monkeypatch.setattr(sd, "CANDIDATES", {"mif_step": sd.CANDIDATES["mif_step"]})
    monkeypatch.setattr(sd, "DT_LADDER", (1, 10))
    # No size finished: nothing to match against.
    assert sd._matched(Ctx, 2, 1, tmp_path, None)["chosen"] is None
    # Matched to a given (loose) ngspice error: a lower bound at the time limit.
    row = sd._matched(Ctx, 2, 1, tmp_path, 0.5)
    assert row["ngspice_seconds"] is None and row["ngspice_err"] is None
    assert row["matched_err"] == 0.5 and row["chosen"]["err"] <= 0.5
    assert row["speedup_lower_bound"] == pytest.approx(1e-3 / row["memjax_seconds"])
    assert "speedup" not in row
