import os
import tempfile
from pathlib import Path

import jax
import pytest

# Implicit rank promotion hides shape bugs (a (n,) array added to an (n, 1) one): the
# library must work with it forbidden, as a careful user may run it (diffrax's tests do).
jax.config.update("jax_numpy_rank_promotion", "raise")

# Data for tests lives beside the checkout (../shared/datasets) unless overridden.
_REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = _REPO.parent / "shared" / "datasets"
if "MEMJAX_DATA_DIR" not in os.environ and _DEFAULT_DATA.is_dir():
    os.environ["MEMJAX_DATA_DIR"] = str(_DEFAULT_DATA)

# No test downloads from the internet or writes to the user's cache: the data mirror is
# a closed port on the loopback interface and the cache a temporary folder per process
# (each pytest-xdist worker imports this file and gets its own).
os.environ["MEMJAX_DATA_MIRROR"] = "http://127.0.0.1:9/"
_CACHE = tempfile.TemporaryDirectory(prefix="memjax-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE.name


@pytest.fixture
def x64():
    """Run the test body in float64 (reference and finite-difference checks)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def getkey():
    """Fresh PRNG keys on each call, deterministic per test."""
    key = [jax.random.key(0)]

    def _getkey():
        key[0], sub = jax.random.split(key[0])
        return sub

    return _getkey


@pytest.fixture
def data_dir():
    """The IDX data folder; skips the test where none is available."""
    d = os.environ.get("MEMJAX_DATA_DIR")
    if not d or not Path(d).is_dir():
        pytest.skip("no MEMJAX_DATA_DIR with the MNIST / Fashion-MNIST IDX files")
    return Path(d)
