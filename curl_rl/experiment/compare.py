"""Many runs: plan an experiment folder, run every (arm, seed) in parallel, summarise.

* Planning (:func:`plan_runs`) checks everything first and decides, per run, whether it is new,
  finished (skipped) or to be redone; an experiment folder made with a different config is
  refused, never overwritten.
* Running (:func:`run_local`) uses a process pool (``forkserver``/``spawn``), a few runs at a time;
  a run that raises becomes ``failed`` in its ``status.json`` and the others go on.
  :func:`run_ray` does the same with one Ray task per run.
* :func:`compare` ties it together and writes ``summary.json``, ``summary.md`` and the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curl_rl.experiment.checkpoint import latest_checkpoint
from curl_rl.experiment.config import ExperimentConfig, UsageError, plain
from curl_rl.experiment.run import RunResult, RunSpec, read_status, run_single_safe, write_status

__all__ = [
    "ExperimentPlan",
    "compare",
    "default_jobs",
    "ensure_out_folder",
    "estimate_run_memory",
    "experiment_dir_for",
    "plan_runs",
    "prepare_experiment_dir",
    "progress_lines",
    "run_local",
    "run_ray",
    "set_aside",
]

EXPERIMENT_FILE = "experiment.yaml"
#: memory of a run besides its buffers: interpreter, torch, SB3, the model, activations
_BASE_RUN_BYTES = 800 * 2**20

OnResult = Callable[[RunSpec, RunResult], None]


def experiment_dir_for(out: str | Path, name: str | None, config: ExperimentConfig) -> Path:
    """``<out>/<name>``, by default ``<out>/<env>-<algo>``.

    :param out: parent folder (``runs``).
    :param name: experiment name, or None.
    :param config: the config (names the default).
    """
    default = f"{config.env_name}-{config.algo}"
    chosen = name or default
    if "/" in chosen or chosen in (".", "..") or not chosen.strip():
        raise UsageError(f"--name {chosen!r} must be a plain folder name")
    return Path(out) / chosen


def ensure_out_folder(out: str | Path) -> Path:
    """Create ``--out`` if needed and check that runs can be written there, before anything trains.

    :param out: the parent folder of experiments (``runs``).
    :return: the folder.
    :raises UsageError: when it is a file, sits under a file, or cannot be created or written.
    """
    folder = Path(out)
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise UsageError(f"--out {out}: {part} is a file, not a folder; pass --out a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--out {out}: cannot create it ({exc.strerror or exc}); pass --out a writable folder"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: not writable by this user; pass --out a writable folder")
    return folder


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            lines += _diff(old.get(key, "<unset>"), new.get(key, "<unset>"), f"{prefix}{key}.")
        return lines
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def prepare_experiment_dir(experiment_dir: Path, config: ExperimentConfig, command: Sequence[str] = ()) -> bool:
    """Create the experiment folder, or check that an existing one holds this very experiment.

    :param experiment_dir: ``runs/<experiment>``.
    :param config: the config of this invocation.
    :param command: the command line, recorded in ``experiment.yaml``.
    :return: True when the folder already existed with the same config (a resume).
    :raises UsageError: when the folder holds another experiment or unrelated files.
    """
    meta_path = experiment_dir / EXPERIMENT_FILE
    fingerprint = config.fingerprint()
    record = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "command": list(command)}
    if meta_path.exists():
        try:
            meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"{meta_path} is unreadable ({exc}); choose another --name") from exc
        old = meta.get("config")
        if old != fingerprint:
            changes = _diff(old, fingerprint)
            shown = "\n  ".join(changes[:12]) + ("\n  ..." if len(changes) > 12 else "")
            raise UsageError(
                f"{experiment_dir} holds an experiment with a different config:\n  {shown}\n"
                f"Nothing was overwritten. Pass --name NEW_NAME (or --out) to start a new experiment, or "
                "rerun with the original settings to resume it."
            )
        meta.setdefault("invocations", []).append(record)
        _write_yaml(meta_path, meta)
        return True
    if experiment_dir.exists() and any(p for p in experiment_dir.iterdir() if not p.name.startswith(".")):
        raise UsageError(
            f"{experiment_dir} exists and holds files that are not a curl-rl experiment; "
            "nothing was overwritten: pass --name NEW_NAME or --out DIR"
        )
    experiment_dir.mkdir(parents=True, exist_ok=True)
    _write_yaml(meta_path, {"experiment": experiment_dir.name, "config": fingerprint, "invocations": [record]})
    return False


def _write_yaml(path: Path, content: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(plain(content), sort_keys=False), encoding="utf-8")
    tmp.replace(path)


@dataclass
class ExperimentPlan:
    """The runs of one ``compare`` invocation.

    :param experiment_dir: ``runs/<experiment>``.
    :param to_run: runs to start (new, or earlier attempts that did not finish).
    :param finished: ``arm/seedN`` of runs already done (skipped).
    :param redone: ``arm/seedN`` of earlier failed attempts, redone from scratch (the old folder is
        kept under ``<arm>/.attempts/``).
    :param continued: ``arm/seedN`` of interrupted runs that continue from their newest checkpoint.
    :param resumed: whether the folder existed with the same config.
    """

    experiment_dir: Path
    to_run: list[RunSpec]
    finished: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    continued: list[str] = field(default_factory=list)
    resumed: bool = False


def plan_runs(
    experiment_dir: Path,
    config: ExperimentConfig,
    arms: Sequence[str],
    seeds: Sequence[int],
    template: RunSpec | None = None,
    command: Sequence[str] = (),
) -> ExperimentPlan:
    """Prepare the folder and list the runs to do (every arm gets the same seeds).

    :param experiment_dir: ``runs/<experiment>``.
    :param config: the experiment config.
    :param arms: arm names.
    :param seeds: seeds, shared by every arm.
    :param template: settings copied into every run (device, TensorBoard, threads, ...).
    :param command: command line recorded in ``experiment.yaml``.
    :return: the plan.
    """
    resumed = prepare_experiment_dir(experiment_dir, config, command)
    plan = ExperimentPlan(experiment_dir=experiment_dir, to_run=[], resumed=resumed)
    base = template or RunSpec(experiment_dir=str(experiment_dir), arm="", seed=0, config=config)
    for arm in arms:
        for seed in seeds:
            spec = dataclasses.replace(
                base,
                experiment_dir=str(experiment_dir),
                arm=arm,
                seed=int(seed),
                config=config,
            )
            status = read_status(spec.run_dir)
            state = status.get("status") if status else None
            if state == "done":
                plan.finished.append(spec.name)
                continue
            if state in ("interrupted", "running") and _resumable(spec.run_dir):
                # stopped by Ctrl-C or a kill: go on from its newest checkpoint
                plan.continued.append(spec.name)
                plan.to_run.append(dataclasses.replace(spec, resume=True))
                continue
            if spec.run_dir.exists() and any(spec.run_dir.iterdir()):
                set_aside(spec.run_dir)
                plan.redone.append(spec.name)
            plan.to_run.append(spec)
    return plan


def _resumable(run_dir: Path) -> bool:
    return (run_dir / "config.yaml").is_file() and latest_checkpoint(run_dir) is not None


def set_aside(run_dir: Path) -> Path:
    """Move an unfinished earlier attempt to ``<arm>/.attempts/`` (kept, never deleted)."""
    attempts = run_dir.parent / ".attempts"
    attempts.mkdir(exist_ok=True)
    target = attempts / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while target.exists():
        n += 1
        target = attempts / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    os.replace(run_dir, target)
    return target


# -- how many at once ---------------------------------------------------------------------------


def available_cpus() -> int:
    """CPUs this process may use (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available for new processes (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_run_memory(config: ExperimentConfig, obs_bytes: int) -> int:
    """Rough peak memory of one run: a fixed base plus its rollout or replay buffer.

    :param config: the experiment config.
    :param obs_bytes: bytes of one observation as the env returns it.
    :return: bytes.
    """
    hp = config.hyperparams
    if "buffer_size" in hp or config.algo in ("sac", "td3", "dqn"):
        size = int(hp.get("buffer_size", 1_000_000))
        size = min(size, config.steps)  # a buffer fills only as far as the run goes
        # observations and next observations (curl_rl's pixel buffer stores frames once; be safe)
        buffers = 2 * size * obs_bytes
    else:
        n_steps = int(hp.get("n_steps", 2048 if config.algo == "ppo" else 5))
        # SB3's rollout buffer holds observations as float32
        buffers = n_steps * config.n_envs * obs_bytes * 4
    return _BASE_RUN_BYTES + buffers


def default_jobs(n_runs: int, config: ExperimentConfig, obs_bytes: int) -> int:
    """``max(1, min(n_runs, cpus, what memory holds))``.

    :param n_runs: runs to do.
    :param config: the experiment config.
    :param obs_bytes: bytes of one observation.
    """
    bound = available_cpus()
    memory = available_memory()
    if memory is not None:
        bound = min(bound, int(0.8 * memory // estimate_run_memory(config, obs_bytes)))
    return max(1, min(n_runs, bound))


# -- running --------------------------------------------------------------------------------------

#: set when SIGTERM reached the compare process: its workers have to be told (see run_local)
_TERMINATED = threading.Event()


def _interrupt(signum: int, frame: Any) -> None:
    _TERMINATED.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill PID``, a scheduler's time limit) stops ``compare`` as
    Ctrl-C does: runs in progress save an ``interrupted`` checkpoint and the workers exit.

    Python's default for SIGTERM ends the process at once, leaving its worker processes training
    on as orphans that keep their run folders locked; a rerun then finds those runs held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    _TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt_once(signum: int, frame: Any) -> None:
    # the first SIGINT/SIGTERM interrupts the run, which then saves its checkpoint; a second one
    # (Ctrl-C and a forwarded SIGINT, or a process-group SIGTERM and its forwarded SIGINT) must
    # not cut that save short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


#: a worker's state as its parent watch sees it: whether a run is in progress, whether compare is gone
_WORKER_LOCK = threading.Lock()
_RUN_ACTIVE = threading.Event()
_ORPHANED = threading.Event()


def _init_worker(compare_pid: int, poll_s: float = 1.0) -> None:
    """Pool initializer: SIGINT and SIGTERM interrupt a worker's run once (see :func:`_interrupt_once`),
    and a daemon thread watches for compare's death.

    :param compare_pid: the compare process.
    :param poll_s: seconds between checks.
    """
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    threading.Thread(
        target=_watch_compare, args=(compare_pid, os.getppid(), poll_s), name="curl_rl-watch-compare", daemon=True
    ).start()


def _compare_alive(compare_pid: int, parent_pid: int) -> bool:
    # the parent changes when it dies (a spawned worker's parent is compare; a forkserver's
    # server exits as soon as compare does)
    if os.getppid() != parent_pid:
        return False
    try:
        os.kill(compare_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's (the pid was reused): compare itself is gone
        return False
    return True


def _watch_compare(compare_pid: int, parent_pid: int, poll_s: float) -> None:
    """Once compare is gone (SIGKILL cannot be handled, so it could not tell anyone), interrupt
    the run in progress as Ctrl-C would (it saves an ``interrupted`` checkpoint and frees its lock)
    and exit: nobody is left to hand out runs or read results, and an orphan would train on with
    the run locked, then wait for work forever, holding its stdout open."""
    while _compare_alive(compare_pid, parent_pid):
        time.sleep(poll_s)
    with _WORKER_LOCK:
        _ORPHANED.set()
        if not _RUN_ACTIVE.is_set():
            os._exit(1)
    os.kill(os.getpid(), signal.SIGINT)  # the run's KeyboardInterrupt; _run_in_worker exits after it


def _run_in_worker(spec: RunSpec) -> RunResult:
    """:func:`run_single_safe` in a pool worker, known to the worker's watch of compare."""
    with _WORKER_LOCK:
        if _ORPHANED.is_set():
            os._exit(1)
        _RUN_ACTIVE.set()
    try:
        return run_single_safe(spec)
    finally:
        with _WORKER_LOCK:
            _RUN_ACTIVE.clear()
            if _ORPHANED.is_set():
                os._exit(1)  # the run has saved what it had; its result has no reader


def _interrupt_workers(pool: ProcessPoolExecutor) -> None:
    # Ctrl-C at a terminal reaches every process of the group; SIGTERM sent to compare alone does not
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(ProcessLookupError, ValueError, AttributeError):
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGINT)


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # workers fork from a server that has imported torch and curl_rl once
        ctx.set_forkserver_preload(["curl_rl.experiment.run"])
        return ctx
    return multiprocessing.get_context("spawn")


def _failed(spec: RunSpec, error: str) -> RunResult:
    try:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        write_status(spec.run_dir, status="failed", error=error, arm=spec.arm, seed=spec.seed)
    except OSError:
        pass
    return RunResult(arm=spec.arm, seed=spec.seed, status="failed", error=error)


OnProgress = Callable[[Sequence[RunSpec]], None]


def progress_lines(specs: Sequence[RunSpec]) -> list[str]:
    """One line per running run from its ``status.json`` (written at each evaluation).

    :param specs: the runs in progress.
    :return: ``"  curl/seed1: 12288/32768 steps (38%), 110 steps/s, last return 8.20, ETA 3.1 min"``.
    """
    lines = []
    for spec in specs:
        status = read_status(spec.run_dir) or {}
        steps, total = int(status.get("env_steps") or 0), int(status.get("total_timesteps") or spec.config.steps)
        wall = float(status.get("wall_time_s") or 0.0)
        if steps <= 0 or wall <= 0:
            lines.append(f"  {spec.name}: starting (no evaluation yet)")
            continue
        rate = steps / wall
        eta = _duration(max(total - steps, 0) / rate) if rate > 0 else "?"
        last = status.get("last_return")
        lines.append(
            f"  {spec.name}: {steps}/{total} steps ({100 * steps / max(total, 1):.0f}%), {rate:.0f} steps/s, "
            f"last return {_fmt(last)}, ETA {eta}"
        )
    return lines


def _progress_printer(stream: Any) -> OnProgress:
    def show(specs: Sequence[RunSpec]) -> None:
        # whole lines only: the same output reads right in a terminal, a log file and CI
        print("\n".join([f"{time.strftime('%H:%M:%S')} in progress:", *progress_lines(specs)]), file=stream, flush=True)

    return show


def run_local(
    specs: Sequence[RunSpec],
    jobs: int,
    on_result: OnResult | None = None,
    on_progress: OnProgress | None = None,
    progress_every_s: float = 60.0,
) -> list[RunResult]:
    """Run every spec in worker processes, ``jobs`` at a time.

    Only ``jobs`` runs are handed to the pool at once, so after Ctrl-C no queued run starts.
    A worker process that dies (e.g. killed for memory) fails the runs it was part of; the
    pool is rebuilt for the rest. If this process dies instead (SIGKILL), each worker notices
    within a second, interrupts its run (an ``interrupted`` checkpoint) and exits.

    :param specs: the runs.
    :param jobs: parallel workers.
    :param on_result: called in the main process as each run finishes.
    :param on_progress: called with the runs in progress when ``progress_every_s`` pass without
        one finishing.
    :param progress_every_s: seconds between progress reports.
    :return: the results, in completion order.
    """
    queue = list(specs)
    results: list[RunResult] = []
    ctx = _mp_context()
    while queue:
        pool = ProcessPoolExecutor(
            max_workers=max(1, jobs), mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
        )
        pending: dict[Future[RunResult], RunSpec] = {}
        broken = False
        try:
            while (queue or pending) and not broken:
                while queue and len(pending) < jobs:
                    spec = queue.pop(0)
                    pending[pool.submit(_run_in_worker, spec)] = spec
                done, _ = wait(pending, timeout=progress_every_s, return_when=FIRST_COMPLETED)
                if not done and on_progress is not None:
                    on_progress(list(pending.values()))
                for future in done:
                    spec = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        broken = True
                        result = _failed(spec, f"the worker process died ({exc}); out of memory?")
                    except Exception as exc:
                        result = _failed(spec, "".join(traceback.format_exception(exc)))
                    results.append(result)
                    if on_result is not None:
                        on_result(spec, result)
            if broken:
                for future, spec in pending.items():
                    future.cancel()
                    result = _failed(spec, "the worker pool broke while this run was in it; rerun to redo it")
                    results.append(result)
                    if on_result is not None:
                        on_result(spec, result)
                pending.clear()
        except KeyboardInterrupt:
            if _TERMINATED.is_set():
                _interrupt_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def _ray_task(spec: RunSpec) -> tuple[RunResult, bytes]:
    """Run one spec in a scratch folder on the Ray worker and return the run folder as a tar.gz.

    Shipping the folder back lets a cluster without a shared filesystem produce the same files
    on the driver's disk as a local compare.
    """
    with tempfile.TemporaryDirectory(prefix="curl_rl-") as tmp:
        local = dataclasses.replace(spec, experiment_dir=str(Path(tmp) / Path(spec.experiment_dir).name))
        result = run_single_safe(local)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            if local.run_dir.exists():
                tar.add(local.run_dir, arcname=".")
        return result, buffer.getvalue()


def _unpack(archive: bytes, run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")


def run_ray(
    specs: Sequence[RunSpec],
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_run: int = 1,
    on_result: OnResult | None = None,
) -> list[RunResult]:
    """Run every spec as a Ray task on an existing cluster (``address``) or a local one.

    Each task trains in a scratch folder on its node and returns the run folder, which is
    unpacked into the experiment folder on this machine; the run folder holds a ``running``
    status meanwhile, so an interrupted compare redoes it on the next invocation.

    :param specs: the runs.
    :param address: Ray cluster address (``ray://host:10001`` or ``auto``); None starts a local Ray.
    :param num_cpus: CPUs of the local Ray (ignored with ``address``).
    :param cpus_per_run: CPUs each task reserves (and torch threads it uses).
    :param on_result: called as each run finishes.
    :return: the results, in completion order.
    """
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--backend ray needs Ray: pip install 'curl_rl[ray]'") from exc
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        started_here = True
    try:
        task = ray.remote(num_cpus=cpus_per_run, max_retries=0)(_ray_task)
        refs: dict[Any, RunSpec] = {}
        for spec in specs:
            spec.run_dir.mkdir(parents=True, exist_ok=True)
            write_status(spec.run_dir, status="running", error=None, arm=spec.arm, seed=spec.seed, backend="ray")
            refs[task.remote(dataclasses.replace(spec, threads=cpus_per_run, progress=False))] = spec
        results: list[RunResult] = []
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                spec = refs.pop(ref)
                try:
                    result, archive = ray.get(ref)
                    _unpack(archive, spec.run_dir)
                except Exception as exc:
                    result = _failed(spec, "".join(traceback.format_exception(exc)))
                results.append(result)
                if on_result is not None:
                    on_result(spec, result)
        return results
    finally:
        if started_here:
            ray.shutdown()


# -- the command ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _printer(total: int, stream: Any) -> OnResult:
    count = {"n": 0}

    def report(spec: RunSpec, result: RunResult) -> None:
        count["n"] += 1
        head = f"[{count['n']}/{total}] {spec.name}"
        if result.status == "done":
            line = (
                f"{head}: done in {_duration(result.wall_time_s)}, {result.steps_per_s:.0f} steps/s, "
                f"final return {_fmt(result.final_return)}, probe R\N{SUPERSCRIPT TWO} {_fmt(result.probe_r2)}"
            )
        else:
            last = [ln for ln in (result.error or "").strip().splitlines() if ln.strip()]
            line = f"{head}: {result.status.upper()}: {last[-1] if last else 'no error recorded'}"
        print(line, file=stream, flush=True)

    return report


def compare(
    plan: ExperimentPlan,
    *,
    jobs: int,
    backend: str = "local",
    address: str | None = None,
    baseline: str = "none",
    stream: Any = None,
    figures: bool = True,
) -> tuple[int, dict[str, Any] | None]:
    """Run a plan, then write ``summary.json``, ``summary.md`` and the figures.

    :param plan: from :func:`plan_runs`.
    :param jobs: parallel runs (local backend; the local Ray's CPUs with ``ray``).
    :param backend: ``local`` or ``ray``.
    :param address: Ray cluster address.
    :param baseline: arm the probability of improvement is measured against.
    :param stream: where progress lines go (stdout by default).
    :param figures: also draw the PNG figures.
    :return: ``(exit code, summary)``: 0 when every run finished, 1 when one failed, 130 on Ctrl-C.
    """
    from curl_rl.results.summary import write_summary

    out = stream if stream is not None else sys.stdout
    specs = plan.to_run
    if plan.finished:
        print(f"skipping {len(plan.finished)} finished run(s): {', '.join(plan.finished)}", file=out, flush=True)
    if plan.continued:
        print(
            f"continuing {len(plan.continued)} interrupted run(s) from their checkpoints: {', '.join(plan.continued)}",
            file=out,
            flush=True,
        )
    if plan.redone:
        print(
            f"redoing {len(plan.redone)} unfinished run(s) (earlier attempts kept under <arm>/.attempts/): "
            + ", ".join(plan.redone),
            file=out,
            flush=True,
        )
    report = _printer(len(specs), out)
    code = 0
    results: list[RunResult] = []
    if specs:
        where = f"Ray ({address or 'local'})" if backend == "ray" else f"{jobs} worker process(es)"
        print(f"running {len(specs)} run(s) on {where} into {plan.experiment_dir}", file=out, flush=True)
        try:
            with terminate_as_interrupt():
                if backend == "ray":
                    results = run_ray(
                        specs, address, num_cpus=jobs, cpus_per_run=specs[0].threads or 1, on_result=report
                    )
                else:
                    results = run_local(specs, jobs, on_result=report, on_progress=_progress_printer(out))
        except KeyboardInterrupt:
            print(
                "interrupted: runs in progress saved a checkpoint; run the same command again to continue",
                file=out,
            )
            code = 128 + (signal.SIGTERM if _TERMINATED.is_set() else signal.SIGINT)
    failed = [r for r in results if r.status != "done"]
    if failed and code == 0:
        code = 1
    summary = write_summary(plan.experiment_dir, baseline=baseline, figures=figures)
    print(f"summary: {plan.experiment_dir / 'summary.md'} (and summary.json)", file=out)
    for key, name in (summary.get("figures") or {}).items():
        if name:
            print(f"figure {key}: {plan.experiment_dir / name}", file=out)
    if failed:
        print(f"{len(failed)} run(s) did not finish: {', '.join(r.name for r in failed)}", file=out)
    print(f"TensorBoard: tensorboard --logdir {plan.experiment_dir}", file=out, flush=True)
    return code, summary


def arm_lines(arms: Iterable[str]) -> list[str]:
    """One line per aux preset with its settings (``curl-rl arms``)."""
    from curl_rl.auxiliary.config import AUX_PRESETS

    lines = []
    for arm in arms:
        settings = AUX_PRESETS[arm]
        text = (
            ", ".join(f"{k}={plain(v)}" for k, v in settings.items()) or "SB3 unchanged (no augmentation, no aux loss)"
        )
        lines.append(f"{arm:<12} {text}")
    return lines
