"""Benchmark name -> (module, function, one-line description). Imported lazily."""

REGISTRY: dict[str, tuple[str, str, str]] = {
    "devices": (
        "benchmarks.devices",
        "run",
        "compact models: pinched hysteresis, scan vs diffrax error, FD gradients, throughput",
    ),
    "spice": (
        "benchmarks.spice",
        "run",
        "HP and MMSS devices in memjax vs ngspice behavioural netlists: error and time",
    ),
}
