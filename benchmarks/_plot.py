"""matplotlib's pyplot on the non-interactive Agg backend (benchmarks write PNG files)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
