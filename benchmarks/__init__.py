"""memjax benchmark runner: ``python -m benchmarks list`` / ``run NAME... [--quick] [--out DIR]``.

Each benchmark is a function ``run(ctx: Context) -> dict`` returning
``{"metrics": {...}, "config": {...}}``; the runner checks every name before running any,
adds ``name``, ``environment`` and ``seconds``, prints the metrics to stdout and writes
``DIR/NAME.json`` atomically as strict JSON (a NaN or infinity becomes ``null``, its key
path and reason listed in ``nulls``); figures go beside it via ``ctx.save_figure``.
Benchmarks are registered in :data:`benchmarks._registry.REGISTRY`.
"""
