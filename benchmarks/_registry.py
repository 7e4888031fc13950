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
    "memprop-mnist": (
        "benchmarks.memprop",
        "run_mnist",
        "MEMprop: MIF neurons + RRAM crossbars trained by BPTT on MNIST (+ LIF and ReLU baselines)",
    ),
    "memprop-fmnist": (
        "benchmarks.memprop",
        "run_fmnist",
        "MEMprop on Fashion-MNIST (+ LIF and ReLU baselines)",
    ),
    "memprop-robustness": (
        "benchmarks.memprop",
        "run_robustness",
        "MEMprop test accuracy against read noise, programming noise and stuck-at faults",
    ),
}
