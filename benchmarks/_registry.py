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
    "memprop-spice": (
        "benchmarks.memprop_spice",
        "run",
        "a trained 784-128-10 MEMprop network in ngspice vs memjax: predictions, membranes, time",
    ),
    "device-fit": (
        "benchmarks.device_fit",
        "run",
        "fit compact models to I-V curves: parameter recovery, cross-model fits on ngspice data",
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
    "metaplastic-mnist-fmnist": (
        "benchmarks.metaplastic",
        "run_mnist_fmnist",
        "metaplastic QNN on multi-level RRAM: MNIST then Fashion-MNIST"
        " (+ m = 0, EWC, non-sequential)",
    ),
    "metaplastic-validation": (
        "benchmarks.metaplastic",
        "run_validation",
        "metaplastic QNN: m chosen on a validation split of the training sets (test sets unread)",
    ),
    "metaplastic-pmnist": (
        "benchmarks.metaplastic_pmnist",
        "run_pmnist",
        "binarized 1024-1024 network on 6 permuted-MNIST tasks, mean final accuracy against m",
    ),
    "metaplastic-devices": (
        "benchmarks.metaplastic",
        "run_devices",
        "metaplastic QNN accuracy against levels, programming noise, stuck-at faults; endurance",
    ),
    "sfa-continual-mnist": (
        "benchmarks.sfa",
        "run_mnist",
        "CNN (SimCLR trunk) on 5 MNIST classes + unsupervised STDP/WTA spiking layer (SFA) "
        "learning the other 5",
    ),
    "sfa-continual-fmnist": (
        "benchmarks.sfa",
        "run_fmnist",
        "the SFA continual-learning pipeline on Fashion-MNIST",
    ),
    "noisy-mnist": (
        "benchmarks.sfa",
        "run_noisy_mnist",
        "the SFA continual-learning pipeline on MNIST with additive Gaussian noise",
    ),
    "sfa-validation": (
        "benchmarks.sfa_validation",
        "run_validation",
        "SFA pipeline: gate, layer size, routing chosen on a validation split (test sets unread)",
    ),
    "sfa-sweep": (
        "benchmarks.sfa",
        "run_sweep",
        "SFA pipeline: acc_all against the number of non-trained classes (1 to 5 of 10)",
    ),
    "speed-lif": (
        "benchmarks.speed",
        "run_lif",
        "one LIF training step (fwd + BPTT + Adam) vs hand-written lax.scan JAX, snnTorch, Spyx",
    ),
    "speed-mif": (
        "benchmarks.speed_mif",
        "run",
        "one MEMprop MIF training step: hand adjoint vs autodiff vs eager PyTorch, roofline,"
        " MNIST epoch",
    ),
    "speed-devices": (
        "benchmarks.speed_devices",
        "run",
        "MIF neuron-steps/s for 1e3-1e6 neurons; memjax vs ngspice on N independent MIF neurons",
    ),
    "memory-bptt": (
        "benchmarks.memory_bptt",
        "run",
        "peak memory and time of MEMprop BPTT against T, with and without checkpointing",
    ),
    "scale-out": (
        "benchmarks.scale_out",
        "run",
        "data-parallel MEMprop training on 4 host devices (jax.sharding) vs one device",
    ),
    "precision": (
        "benchmarks.precision",
        "run",
        "MEMprop step in float64 / float32 / bfloat16: time, error, accuracy; step profile",
    ),
    "nir-deploy": (
        "benchmarks.nir_deploy",
        "run",
        "snnTorch MNIST LIF network via NIR onto 16-level RRAM: deployed, fine-tuned, drift, MIF,"
        " IR drop vs ngspice",
    ),
}


#: Benchmarks whose settings ``python -m benchmarks run NAME --set KEY=VALUE`` overrides
#: (they read them through `Context.settings`): name -> (module, key), the settings
#: dataclasses being ``module.SETTINGS[key]["full"]`` and ``["quick"]``, so that the
#: runner checks the keys and values before anything runs.
SETTABLE: dict[str, tuple[str, str]] = {
    "metaplastic-mnist-fmnist": ("benchmarks.metaplastic", "mnist_fmnist"),
    "metaplastic-validation": ("benchmarks.metaplastic", "validation"),
    "metaplastic-pmnist": ("benchmarks.metaplastic", "pmnist"),
    "metaplastic-devices": ("benchmarks.metaplastic", "devices"),
}
