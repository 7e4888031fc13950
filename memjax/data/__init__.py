"""Datasets (MNIST, Fashion-MNIST) and spike encoders.

``load(name, split)`` returns NumPy arrays from an IDX folder (``data_dir`` or
``$MEMJAX_DATA_DIR``), from tensorflow-datasets when that cannot wait on the network,
or from the small bundled sample (with a warning). See docs/data.md.
"""

from . import encoding as encoding
from ._batch import batches as batches
from ._batch import num_batches as num_batches
from ._idx import IDXFormatError as IDXFormatError
from ._idx import read_idx as read_idx
from ._load import DATASETS as DATASETS
from ._load import ENV_VAR as ENV_VAR
from ._load import SOURCES as SOURCES
from ._load import SPLITS as SPLITS
from ._load import SampleDataWarning as SampleDataWarning
from ._load import load as load
from .encoding import direct as direct
from .encoding import latency as latency
from .encoding import latency_steps as latency_steps
from .encoding import normalize as normalize
from .encoding import rate as rate

__all__ = [
    "load",
    "batches",
    "num_batches",
    "normalize",
    "direct",
    "rate",
    "latency",
    "latency_steps",
    "encoding",
    "read_idx",
    "IDXFormatError",
    "SampleDataWarning",
    "DATASETS",
    "SPLITS",
    "SOURCES",
    "ENV_VAR",
]
