"""The one checkpoint module: verified orbax checkpoints keyed by what produced them.

A checkpoint step holds the array leaves of a pytree (orbax ``StandardSave``) and a JSON
part with

- the **fingerprint** of the run that wrote it (:func:`fingerprint`: model structure,
  optimizer state structure and hyperparameters, seed, batch size, data identity and the
  caller's settings);
- the shape, dtype and SHA-256 checksum of every stored array (orbax stores none);
- the caller's metadata (epoch, step, history, ...).

Guarantees of :class:`Checkpointer`:

- ``save`` refuses a state with a NaN or infinite entry (:class:`NonFiniteStateError`),
  so a diverged state never replaces a good one, and rotation (``max_to_keep``) only
  drops older *finite* steps;
- ``restore`` compares fingerprints first: a difference raises
  :class:`CheckpointMismatchError` naming each differing part, unless
  ``on_mismatch="restart"``; then it verifies every array read (shape, dtype,
  checksum, finiteness). A step that fails is moved to ``corrupt-<step>-<time>/`` inside
  the folder and the newest intact step is used instead, with a warning; when no step is
  intact, :class:`CheckpointCorruptError` ("checkpoint ... is corrupt");
- nothing is deleted that this checkpointer did not write: ``resume=False`` and
  ``on_mismatch="restart"`` move existing steps into ``superseded-<time>/`` inside the
  folder (with a warning) and start afresh; other files are left alone.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Checkpointer",
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointCorruptError",
    "NonFiniteStateError",
    "fingerprint",
    "fingerprint_digest",
    "data_identity",
    "tree_identity",
    "optimizer_identity",
]

_FORMAT = 3
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class CheckpointError(ValueError):
    """A checkpoint cannot be used."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was written by a run with another fingerprint."""


class CheckpointCorruptError(CheckpointError):
    """No step of the checkpoint folder reads back intact."""


class NonFiniteStateError(FloatingPointError):
    """Training produced a NaN or infinite loss or state."""


# --------------------------------------------------------------------------------------
# Fingerprints


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _raw(x) -> np.ndarray:
    return np.asarray(jax.device_get(jax.random.key_data(x) if _is_key(x) else x))


def tree_identity(tree: Any) -> str:
    """Structure of a pytree: its array count and sizes, and a digest of its treedef
    (static fields included, memory addresses removed) and leaf shapes and dtypes."""
    leaves, treedef = jax.tree_util.tree_flatten(eqx.filter(tree, eqx.is_array))
    sig = [(tuple(v.shape), str(v.dtype)) for v in leaves]
    size = sum(int(np.prod(s)) for s, _ in sig)
    return (
        f"{len(leaves)} arrays, {size} numbers, structure "
        f"{_digest(_ADDRESS.sub('', str(treedef)), sig)}"
    )


def _hyperparameters(obj: Any, seen: dict[int, Any], depth: int = 0) -> list[str]:
    """Numbers, strings and array values captured by the closures of an optax
    transformation (its hyperparameters), in a fixed traversal order."""
    if isinstance(obj, (bool, int, float, str, np.number)) or obj is None:
        return [repr(obj)]
    if depth > 48 or id(obj) in seen:
        return []
    seen[id(obj)] = obj  # kept alive so that its id is not reused during the walk
    if isinstance(obj, (np.ndarray, jax.Array)) and np.size(obj) <= 64 and not _is_key(obj):
        return [repr(np.asarray(obj).tolist())]
    if isinstance(obj, (tuple, list)):
        return [s for o in obj for s in _hyperparameters(o, seen, depth + 1)]
    if isinstance(obj, Mapping):
        return [
            s
            for k in sorted(obj, key=str)
            for s in [str(k), *_hyperparameters(obj[k], seen, depth + 1)]
        ]
    if inspect.isfunction(obj):
        cells = [c.cell_contents for c in (obj.__closure__ or ()) if _has_content(c)]
        return [obj.__qualname__, *_hyperparameters(cells, seen, depth + 1)]
    if hasattr(obj, "__func__"):  # bound method
        return _hyperparameters(obj.__func__, seen, depth + 1)
    return [type(obj).__qualname__]


def _has_content(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def optimizer_identity(optimizer: Any) -> str:
    """A digest of an optax transformation's hyperparameters (the values its ``init``
    and ``update`` closures capture: learning rates, betas, schedules' constants)."""
    seen: dict[int, Any] = {}
    parts = _hyperparameters(getattr(optimizer, "init", None), seen) + _hyperparameters(
        getattr(optimizer, "update", None), seen
    )
    return _digest(*parts)


def data_identity(x: Any, y: Any | None = None, *, n_slice: int = 256) -> str:
    """Size, shape, dtype and a SHA-256 of ``n_slice`` evenly strided samples of ``x``
    and of all of ``y``."""
    x = np.asarray(x)
    stride = max(1, len(x) // n_slice)
    h = _digest(
        np.ascontiguousarray(x[::stride]).tobytes(),
        b"" if y is None else np.ascontiguousarray(np.asarray(y)).tobytes(),
    )
    ys = "" if y is None else f", y {np.shape(y)} {np.asarray(y).dtype}"
    return f"x {x.shape} {x.dtype}{ys}, content {h}"


def fingerprint(
    *,
    model: Any = None,
    optimizer: Any = None,
    opt_state: Any = None,
    seed: int | None = None,
    batch_size: int | None = None,
    data: Mapping[str, tuple[Any, Any]] | tuple[Any, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What a run depends on, as ``{part: description}`` (JSON strings).

    ``data`` is ``(x, y)`` or ``{name: (x, y)}``; ``settings`` any JSON-serialisable
    dict of the caller's choices (each key becomes its own part ``settings.<key>``).
    """
    fp: dict[str, str] = {}
    if model is not None:
        fp["model"] = tree_identity(model)
    if optimizer is not None:
        fp["optimizer"] = optimizer_identity(optimizer)
    if opt_state is not None:
        fp["optimizer_state"] = tree_identity(opt_state)
    if seed is not None:
        fp["seed"] = str(int(seed))
    if batch_size is not None:
        fp["batch_size"] = str(int(batch_size))
    if data is not None:
        items = data.items() if isinstance(data, Mapping) else [("data", data)]
        for name, (dx, dy) in items:
            fp[name if name == "data" else f"data.{name}"] = data_identity(dx, dy)
    for k, v in (settings or {}).items():
        fp[f"settings.{k}"] = json.dumps(v, sort_keys=True, default=repr)
    return fp


def fingerprint_digest(fp: Mapping[str, str], n: int = 12) -> str:
    """A short hex digest of a :func:`fingerprint`, e.g. to name a checkpoint folder."""
    return _digest(json.dumps(dict(fp), sort_keys=True))[:n]


def _differences(saved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    out = []
    for k in sorted(set(saved) | set(now)):
        if saved.get(k) != now.get(k):
            out.append(
                f"{k}: checkpoint {saved.get(k, '(absent)')!r}, this run {now.get(k, '(absent)')!r}"
            )
    return out


# --------------------------------------------------------------------------------------
# Array leaves


def _leaves(tree: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))


def _with_leaves(template: Any, leaves: list[np.ndarray]) -> Any:
    arrays, static = eqx.partition(template, eqx.is_array)
    flat, treedef = jax.tree_util.tree_flatten(arrays)
    new = [
        jax.random.wrap_key_data(jnp.asarray(v), impl=jax.random.key_impl(old))
        if _is_key(old)
        else jnp.asarray(v)
        for old, v in zip(flat, leaves)
    ]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)


def _checksum(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _non_finite(leaves: list[np.ndarray]) -> list[int]:
    return [
        i
        for i, a in enumerate(leaves)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a))
    ]


# --------------------------------------------------------------------------------------
# The checkpointer


def _step_dirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"


class Checkpointer:
    """Verified save and restore of one run's pytree in ``directory`` (module docstring).

    ``fingerprint``: this run's :func:`fingerprint`; ``owner`` prefixes messages;
    ``log`` receives the warnings too (they are also issued with `warnings.warn`);
    ``partial``: compare only the parts ``fingerprint`` names (e.g. the model structure,
    to reload a trained model without its data).
    """

    def __init__(
        self,
        directory: str | Path,
        fingerprint: Mapping[str, str],
        *,
        max_to_keep: int = 2,
        resume: bool = True,
        on_mismatch: str = "raise",
        owner: str = "checkpoint",
        log: Callable[[str], None] | None = None,
        partial: bool = False,
    ):
        if on_mismatch not in ("raise", "restart"):
            raise ValueError(
                f"{owner}: on_mismatch must be 'raise' or 'restart'; got {on_mismatch!r}"
            )
        self.directory = Path(directory).absolute()
        self.fingerprint = dict(fingerprint)
        self.max_to_keep = max_to_keep
        self.resume = resume
        self.on_mismatch = on_mismatch
        self.owner = owner
        self.log = log
        self.partial = partial
        self._mngr = None
        if not resume:
            self._move_aside("superseded", "resume=False")

    # -- bookkeeping -------------------------------------------------------------------

    def _warn(self, msg: str) -> None:
        warnings.warn(f"{self.owner}: {msg}", RuntimeWarning, stacklevel=3)
        if self.log is not None:
            self.log(f"warning: {msg}")

    def _close(self) -> None:
        if self._mngr is not None:
            self._mngr.close()
            self._mngr = None

    def _manager(self):
        import orbax.checkpoint as ocp

        if self._mngr is None:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.max_to_keep, create=True, enable_async_checkpointing=False
            )
            self._mngr = ocp.CheckpointManager(self.directory, options=options)
        return self._mngr

    def _move_aside(self, what: str, why: str, steps: list[Path] | None = None) -> None:
        steps = _step_dirs(self.directory) if steps is None else steps
        if not steps:
            return
        self._close()
        dest = self.directory / f"{what}-{_stamp()}"
        dest.mkdir(parents=True)
        for p in steps:
            shutil.move(str(p), str(dest / p.name))
        self._warn(
            f"{why}: moved checkpoint step(s) {[int(p.name) for p in steps]} of "
            f"{self.directory} to {dest} (nothing deleted)"
        )

    # -- save --------------------------------------------------------------------------

    def save(self, step: int, tree: Any, meta: Mapping[str, Any]) -> None:
        """Save the array leaves of ``tree`` and ``meta`` as ``step``; refuses
        non-finite arrays (:class:`NonFiniteStateError`), keeping the last good step."""
        import orbax.checkpoint as ocp

        leaves = [_raw(v) for v in _leaves(tree)]
        bad = _non_finite(leaves)
        if bad:
            have = [int(p.name) for p in _step_dirs(self.directory)]
            raise NonFiniteStateError(
                f"{self.owner}: the state to be saved as step {step} has non-finite "
                f"values in array(s) {bad}; not saved (steps kept in {self.directory}: "
                f"{have})"
            )
        record = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "arrays": [[list(a.shape), str(a.dtype), _checksum(a)] for a in leaves],
            "meta": dict(meta),
        }
        mngr = self._manager()
        mngr.save(
            int(step),
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave({f"{i:05d}": a for i, a in enumerate(leaves)}),
                meta=ocp.args.JsonSave(record),
            ),
        )
        mngr.wait_until_finished()

    # -- restore -----------------------------------------------------------------------

    def _read_record(self, step: int) -> dict[str, Any]:
        import orbax.checkpoint as ocp

        got = self._manager().restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]
        if not isinstance(got, dict) or got.get("format") != _FORMAT:
            fmt = got.get("format") if isinstance(got, dict) else None
            raise CheckpointError(
                f"{self.owner}: checkpoint step {step} in {self.directory} has layout "
                f"format {fmt}, not {_FORMAT}; use another folder or resume=False (which "
                "moves it aside)"
            )
        return got

    def _read_arrays(self, step: int, record: dict, template_leaves: list) -> list[np.ndarray]:
        import orbax.checkpoint as ocp

        abstract = {
            f"{i:05d}": jax.ShapeDtypeStruct(tuple(s), np.dtype(d))
            for i, (s, d, _) in enumerate(record["arrays"])
        }
        got = self._manager().restore(
            step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract))
        )["arrays"]
        leaves = [np.asarray(got[k]) for k in sorted(got)]
        for i, (a, (s, d, c)) in enumerate(zip(leaves, record["arrays"])):
            if list(a.shape) != list(s) or str(a.dtype) != d or _checksum(a) != c:
                raise CheckpointCorruptError(f"array {i} does not match its checksum")
        bad = _non_finite(leaves)
        if bad:
            raise CheckpointCorruptError(f"array(s) {bad} hold non-finite values")
        return leaves

    def _check_structure(self, step: int, record: dict, template_leaves: list) -> None:
        raw = [_raw(v) for v in template_leaves]
        want = [[list(a.shape), str(a.dtype)] for a in raw]
        have = [r[:2] for r in record["arrays"]]
        if want != have:
            diff = next(
                (i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have))
            )
            raise CheckpointMismatchError(
                f"{self.owner}: checkpoint step {step} in {self.directory} does not match "
                f"the state being trained: {len(have)} arrays stored, {len(want)} expected; "
                f"first difference at array {diff}; use another folder or resume=False"
            )

    def restore(self, template: Any | Callable[[dict], Any]) -> tuple[Any, dict] | None:
        """The newest intact step as ``(tree, meta)``, or None (nothing to resume from).

        ``template``: a pytree with the structure saved (its arrays are replaced), or
        ``meta -> pytree`` when the structure depends on the stored metadata.
        """
        if not self.resume:
            return None
        steps = _step_dirs(self.directory)
        errors = []
        for p in reversed(steps):
            step = int(p.name)
            try:
                record = self._read_record(step)
            except CheckpointError:
                raise
            except Exception as e:  # unreadable JSON part: a damaged step
                errors.append((p, f"its metadata cannot be read ({type(e).__name__}: {e})"))
                continue
            saved = record["fingerprint"]
            if self.partial:
                saved = {k: saved.get(k, "(absent)") for k in self.fingerprint}
            diff = _differences(saved, self.fingerprint)
            if diff:
                msg = (
                    f"the checkpoint in {self.directory} was written by another run; "
                    "differences:\n  " + "\n  ".join(diff)
                )
                if self.on_mismatch == "raise":
                    raise CheckpointMismatchError(
                        f"{self.owner}: {msg}\nUse another checkpoint folder, resume=False "
                        "or on_mismatch='restart' (both move the old steps aside)."
                    )
                self._move_aside("superseded", "on_mismatch='restart'")
                return None
            tree = template(record["meta"]) if callable(template) else template
            template_leaves = _leaves(tree)
            self._check_structure(step, record, template_leaves)
            try:
                leaves = self._read_arrays(step, record, template_leaves)
            except Exception as e:  # truncated/flipped bytes surface as assorted errors
                errors.append((p, f"{type(e).__name__}: {e}"))
                continue
            for bad, why in errors:
                self._move_aside(
                    f"corrupt-{bad.name}",
                    f"checkpoint step {bad.name} is corrupt ({why}); falling back to step {step}",
                    [bad],
                )
            return _with_leaves(tree, leaves), record["meta"]
        if errors:
            detail = "; ".join(f"step {p.name}: {why}" for p, why in errors)
            raise CheckpointCorruptError(
                f"{self.owner}: checkpoint {self.directory} is corrupt, no step reads back "
                f"intact ({detail}); resume=False moves it aside and starts afresh"
            )
        return None

    def close(self) -> None:
        """Release the orbax manager."""
        self._close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self._close()
