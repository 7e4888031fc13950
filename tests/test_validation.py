"""Parameter checks shared by every model (memjax/_validation.py): a parameter that is
not a real number, or shapes that do not broadcast, are named in the error."""

import numpy as np
import pytest

import memjax.devices as md


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda v: md.HPMemristor(R_on=v), "R_on"),
        (lambda v: md.HPMemristor(x0=v), "x0"),
        (lambda v: md.HPMemristor(window=md.Joglekar(p=v)), "p"),
        (lambda v: md.TEAMMemristor(k_off=v), "k_off"),
        (lambda v: md.VTEAMMemristor(v_on=v), "v_on"),
        (lambda v: md.YakopcicMemristor(eta=v), "eta"),
        (lambda v: md.StanfordPKURRAM(T0=v), "T0"),
        (lambda v: md.MMSSMemristor(v_t=v), "v_t"),
        (lambda v: md.VO2ThresholdSwitch(beta=v), "beta"),
    ],
)
@pytest.mark.parametrize("bad", ["100", 1.0 + 2.0j, np.array([1.0 + 0j]), b"1", object()])
def test_non_real_parameter_is_a_type_error_naming_the_field(make, field, bad):
    with pytest.raises(TypeError, match=rf"\.{field} must be a real number"):
        make(bad)


def test_multilevel_rram_rejects_non_real():
    with pytest.raises(TypeError, match=r"G_max must be a real number"):
        md.MultiLevelRRAM(G_max="1e-5")


@pytest.mark.parametrize(
    "make",
    [
        lambda: md.HPMemristor(R_on=np.full(3, 100.0), R_off=np.full(4, 1e4)),
        lambda: md.HPMemristor(mu_v=np.full(3, 1e-14), x0=np.full(4, 0.1)),
        lambda: md.YakopcicMemristor(a1=np.full(2, 0.17), A_n=np.full(5, 4e3)),
        lambda: md.MMSSMemristor(tau=np.full((2, 3), 1e-4), V_on=np.full(2, 0.27)),
    ],
)
def test_non_broadcasting_shapes_name_both(make):
    with pytest.raises(ValueError, match=r"shapes of \w+ \(.*\) and \w+ \(.*\) do not broadcast"):
        make()


def test_broadcasting_shapes_are_accepted():
    dev = md.HPMemristor(R_on=np.full((2, 1), 100.0), x0=np.full(3, 0.1))
    assert np.shape(dev.R_on) == (2, 1)
