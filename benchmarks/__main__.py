"""Command line: ``python -m benchmarks list`` and ``python -m benchmarks run NAME``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from ._context import Context, apply_overrides, environment
from ._json import dumps, to_json, write_atomic
from ._registry import REGISTRY, SETTABLE


def check_names(names) -> None:
    """Raise `SystemExit` naming every unknown benchmark in ``names`` and the known ones
    (before anything runs)."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SystemExit(
            f"unknown benchmark{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; available: {', '.join(sorted(REGISTRY))}"
        )


def check_settable(names, overrides) -> None:
    """Raise `SystemExit` if ``overrides`` are given for a benchmark that takes none, or
    name a key or hold a value that a benchmark's settings refuse (before anything runs)."""
    if not overrides:
        return
    bad = [n for n in names if n not in SETTABLE]
    if bad:
        raise SystemExit(
            f"--set is not supported by {', '.join(map(repr, bad))}; "
            f"benchmarks that take it: {', '.join(sorted(SETTABLE))}"
        )
    for name in names:
        module, key = SETTABLE[name]
        modes = importlib.import_module(module).SETTINGS[key]
        for mode in ("full", "quick"):
            apply_overrides(name, modes[mode], overrides)


def parse_overrides(items) -> dict[str, str]:
    """``["key=value", ...]`` -> ``{key: value}``; a malformed item raises `SystemExit`."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set expects KEY=VALUE; got {item!r}")
        out[key.strip()] = value
    return out


def run_benchmark(
    name: str,
    *,
    quick: bool = False,
    out: str | Path = "benchmark-output",
    data_dir: str | None = None,
    seed: int = 0,
    overrides: dict[str, str] | None = None,
) -> dict:
    """Run one benchmark and write ``out/NAME.json``; returns the record. ``overrides``:
    settings ``{key: value}`` (strings, as ``--set key=value``) for the benchmarks in
    `SETTABLE`."""
    check_names([name])
    overrides = dict(overrides or {})
    check_settable([name], overrides)
    module, func, _ = REGISTRY[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        name=name, quick=quick, out=out, data_dir=data_dir, seed=seed, overrides=overrides
    )
    fn = getattr(importlib.import_module(module), func)
    t0 = time.perf_counter()
    result = fn(ctx)
    seconds = time.perf_counter() - t0
    record = {
        "name": name,
        "metrics": result.get("metrics", {}),
        # every record says where its data came from (IDX folder, download cache,
        # TFDS or the bundled sample): memjax.data records each load
        "config": {
            "quick": quick,
            "seed": seed,
            **({"overrides": overrides} if overrides else {}),
            **result.get("config", {}),
            **ctx.data_config(),
        },
        "environment": environment(),
        "seconds": seconds,
        "figures": ctx.figures,
    }
    nulls: dict[str, str] = {}
    record = to_json(record, nulls)
    if nulls:  # each null of the record and why (strict JSON has no NaN or infinity)
        record["nulls"] = nulls
    # stdout first: the metrics survive a failure to write the file
    print(
        dumps(
            {"name": name, "metrics": record["metrics"], **({"nulls": nulls} if nulls else {})},
            indent=2,
        ),
        flush=True,
    )
    path = write_atomic(out / f"{name}.json", record)
    print(f"wrote {path} ({seconds:.1f} s)", file=sys.stderr)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the benchmarks")
    r = sub.add_parser("run", help="run one or more benchmarks")
    r.add_argument("names", nargs="+", metavar="NAME")
    r.add_argument("--quick", action="store_true", help="small settings, < 2 minutes")
    r.add_argument("--out", default="benchmark-output", help="output folder (default: %(default)s)")
    r.add_argument(
        "--data-dir",
        default=None,
        help="folder with mnist/ and fashion-mnist/ IDX files (default: $MEMJAX_DATA_DIR, "
        "then tensorflow-datasets, then the sample bundled with memjax)",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the benchmark's settings (repeatable; comma-separated "
        "lists), e.g. --set ms=1.35 --set epochs=20; recorded in the JSON config",
    )
    args = parser.parse_args(argv)
    if args.cmd == "list":
        width = max(len(n) for n in REGISTRY)
        for n, (_, _, desc) in REGISTRY.items():
            print(f"{n:<{width}}  {desc}")
        return 0
    check_names(args.names)
    overrides = parse_overrides(args.set)
    check_settable(args.names, overrides)
    data_dir = args.data_dir or os.environ.get("MEMJAX_DATA_DIR")
    for n in args.names:
        run_benchmark(
            n,
            quick=args.quick,
            out=args.out,
            data_dir=data_dir,
            seed=args.seed,
            overrides=overrides,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
