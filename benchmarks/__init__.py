"""memjax benchmark runner: ``python -m benchmarks list`` / ``run NAME [--quick] [--out DIR]``.

Each benchmark is a function ``run(ctx: Context) -> dict`` returning
``{"metrics": {...}, "config": {...}}``; the runner adds ``name``, ``environment`` and
``seconds`` and writes ``DIR/NAME.json`` (figures go beside it via ``ctx.save_figure``).
Benchmarks are registered in :data:`benchmarks._registry.REGISTRY`.
"""
