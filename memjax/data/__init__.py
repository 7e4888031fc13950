"""Datasets (MNIST, Fashion-MNIST) and spike encoders.

``load(name, split)`` returns NumPy arrays from an IDX folder (``data_dir`` or
``$MEMJAX_DATA_DIR``), the download cache (official IDX files fetched once, SHA-256
verified), tensorflow-datasets when that cannot wait on the network, or the small
bundled sample (with a warning); ``last_source()`` says which. See docs/data.md.
"""

from . import encoding as encoding
from ._batch import batches as batches
from ._batch import num_batches as num_batches
from ._download import DownloadError as DownloadError
from ._download import cache_dir as cache_dir
from ._download import download as download
from ._idx import IDXFormatError as IDXFormatError
from ._idx import read_idx as read_idx
from ._load import DATASETS as DATASETS
from ._load import ENV_VAR as ENV_VAR
from ._load import SOURCES as SOURCES
from ._load import SPLITS as SPLITS
from ._load import SampleDataWarning as SampleDataWarning
from ._load import clear_sources as clear_sources
from ._load import last_source as last_source
from ._load import load as load
from ._load import loaded_sources as loaded_sources
from .augment import augment_images as augment_images
from .encoding import direct as direct
from .encoding import latency as latency
from .encoding import latency_steps as latency_steps
from .encoding import normalize as normalize
from .encoding import rate as rate
from .encoding import scale_images as scale_images

__all__ = [
    "load",
    "download",
    "cache_dir",
    "DownloadError",
    "last_source",
    "loaded_sources",
    "clear_sources",
    "batches",
    "num_batches",
    "scale_images",
    "normalize",
    "direct",
    "rate",
    "latency",
    "latency_steps",
    "encoding",
    "augment_images",
    "read_idx",
    "IDXFormatError",
    "SampleDataWarning",
    "DATASETS",
    "SPLITS",
    "SOURCES",
    "ENV_VAR",
]
