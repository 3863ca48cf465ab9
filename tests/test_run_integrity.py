"""Run-folder integrity: one writer per run and per experiment, stale locks, resume of the folder given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from curl_rl.experiment.lock import LOCK_NAME, FolderLock, FolderLocked


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with FolderLock(folder):
        holder = json.loads((folder / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(FolderLocked, match=rf"pid {os.getpid()} on host .* delete .*{LOCK_NAME}"):
            FolderLock(folder).acquire()
    assert not (folder / LOCK_NAME).exists()  # released on exit
    with pytest.raises(KeyboardInterrupt), FolderLock(folder):
        raise KeyboardInterrupt  # Ctrl-C releases it too
    assert not (folder / LOCK_NAME).exists()


def test_a_stale_lock_of_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(done.stdout)  # that process has exited
    folder.mkdir()
    import socket

    (folder / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(), "since": "x"}))
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of pid {dead_pid}"), FolderLock(folder):
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    # another host's lock cannot be checked from here: refused
    (folder / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": "elsewhere", "since": "x"}))
    with pytest.raises(FolderLocked, match="host elsewhere"):
        FolderLock(folder).acquire()


def test_run_single_refuses_a_folder_another_writer_holds_and_leaves_it_alone(tmp_path: Path) -> None:
    from curl_rl.experiment.config import resolve_experiment
    from curl_rl.experiment.run import RunSpec, run_single, run_single_safe

    config = resolve_experiment(env="distractor-easy", algo="ppo", steps=64)
    spec = RunSpec(experiment_dir=str(tmp_path / "exp"), arm="none", seed=0, config=config, threads=1)
    with FolderLock(spec.run_dir):
        (spec.run_dir / "status.json").write_text('{"status": "running"}')
        with pytest.raises(FolderLocked):
            run_single(spec)
        result = run_single_safe(spec)
        assert result.status == "failed" and "being written by" in (result.error or "")
        assert json.loads((spec.run_dir / "status.json").read_text()) == {"status": "running"}


def test_a_stop_while_the_final_model_is_written_leaves_the_run_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    from curl_rl import CurlPPO
    from curl_rl.experiment.config import resolve_experiment
    from curl_rl.experiment.run import RunSpec, run_single

    real_save = CurlPPO.save
    landed = []

    def save_hit_by_sigint(self: CurlPPO, path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == "model.zip" and Path(path).parent.name == "seed0" and not landed:
            landed.append(path)
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # Python runs the SIGINT handler by here
            except KeyboardInterrupt as exc:
                # what torch's zip writer turns a KeyboardInterrupt into, half-way through a file
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from exc
        real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(CurlPPO, "save", save_hit_by_sigint)
    config = resolve_experiment(env="distractor-easy", algo="ppo", steps=64)
    spec = RunSpec(experiment_dir=str(tmp_path / "exp"), arm="curl", seed=0, config=config, threads=1)
    # Python's own SIGINT handler, as in a foreground process: a background job (`cmd &` in a shell
    # without job control, as CI may start the suite) inherits SIGINT ignored, and then no Ctrl-C
    # exists for this test to model
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_single(spec)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert landed
    status = json.loads((spec.run_dir / "status.json").read_text())
    # not "failed": compare resumes an interrupted run from its checkpoint instead of redoing it
    assert status["status"] == "interrupted" and status["checkpoint"], status
    assert (spec.run_dir / "model.zip").is_file()


@pytest.fixture
def _cli_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from curl_rl.envs.presets import ENV_PATH_VAR

    monkeypatch.setenv(ENV_PATH_VAR, str(Path(__file__).with_name("envs")))
    monkeypatch.chdir(tmp_path)


def _finished_run_with_checkpoints() -> Path:
    from curl_rl.experiment.cli import main

    argv = ["train", "--env", "dots", "--aux", "curl", "--steps", "96", "--threads", "1", "--checkpoint-freq", "32"]
    argv += ["--tb-images-every", "0", "--set", "probe.enabled=false", "--no-progress"]
    assert main(argv) == 0
    return Path("runs") / "dots-ppo" / "curl" / "seed0"


def _damage(checkpoint: Path) -> None:
    for zip_file in checkpoint.glob("*.zip"):
        zip_file.write_bytes(b"\0" * zip_file.stat().st_size)  # same size, not a zip any more


@pytest.mark.usefixtures("_cli_envs")
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_with_a_warning() -> None:
    from curl_rl.experiment.checkpoint import list_checkpoints
    from curl_rl.experiment.cli import main

    run_dir = _finished_run_with_checkpoints()
    found = list_checkpoints(run_dir)
    assert len(found) >= 2
    _damage(found[-1])
    with pytest.warns(RuntimeWarning, match=r"1 newer checkpoint\(s\) did not load.*trained again"):
        assert main(["train", "--resume", str(run_dir), "--steps", "160", "--threads", "1", "--no-progress"]) == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["env_steps"] >= 160


@pytest.mark.usefixtures("_cli_envs")
def test_a_failed_resume_leaves_the_status_of_a_finished_run_alone(capsys: pytest.CaptureFixture[str]) -> None:
    from curl_rl.experiment.checkpoint import list_checkpoints
    from curl_rl.experiment.cli import main

    run_dir = _finished_run_with_checkpoints()
    before = (run_dir / "status.json").read_bytes()
    for checkpoint in list_checkpoints(run_dir):
        _damage(checkpoint)
    assert main(["train", "--resume", str(run_dir), "--steps", "160", "--threads", "1", "--no-progress"]) == 2
    assert "no checkpoint loads" in capsys.readouterr().err
    assert (run_dir / "status.json").read_bytes() == before  # still done, its steps intact


@pytest.mark.usefixtures("_cli_envs")
def test_a_run_killed_before_its_first_checkpoint_can_be_restarted(capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from curl_rl.experiment.cli import main

    run_dir = Path("runs") / "dots-ppo" / "curl" / "seed0"
    argv = ["train", "--env", "dots", "--aux", "curl", "--steps", "64", "--threads", "1", "--no-progress"]
    argv += ["--tb-images-every", "0", "--set", "probe.enabled=false"]
    assert main(argv) == 0
    # as if it had been killed before its first checkpoint
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "status.json").write_text(json.dumps({"status": "running", "env_steps": 0}))
    assert main(argv) == 2
    assert "no checkpoint to continue from; start it again with --restart" in capsys.readouterr().err
    assert main([*argv, "--restart", "--resume", str(run_dir)]) == 2
    assert main([*argv, "--restart"]) == 0
    assert "the old run (status running) is kept in" in capsys.readouterr().err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    (kept,) = (run_dir.parent / ".attempts").iterdir()
    assert json.loads((kept / "status.json").read_text())["status"] == "running"


@pytest.mark.usefixtures("_cli_envs")
def test_resume_takes_the_safe_overrides_and_refuses_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    from curl_rl import CurlPPO
    from curl_rl.experiment.cli import main

    run_dir = _finished_run_with_checkpoints()
    resume = ["train", "--resume", str(run_dir), "--steps", "160", "--threads", "1", "--no-progress"]
    assert main([*resume, "--set", "algo.gamma=0.5"]) == 2
    err = capsys.readouterr().err
    assert "--set algo.gamma cannot change on --resume" in err and "aux.weight" in err
    changes = ["--set", "aux.weight=0.5", "--set", "aux.lr=3e-5", "--set", "algo.learning_rate=1e-4"]
    assert main([*resume, *changes]) == 0
    model = CurlPPO.load(run_dir / "model.zip", device="cpu")
    assert model.aux_config.weight == 0.5 and model.aux_config.lr == 3e-5
    assert model.learning_rate == 1e-4 and model.lr_schedule(1.0) == 1e-4
    assert all(group["lr"] == 3e-5 for group in model.aux_optimizer.param_groups)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["aux"]["weight"] == 0.5 and "aux.weight=0.5" in saved["cli"]["set"]


def _compare_with_a_checkpointed_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path, int]:
    """Start a long one-run ``compare`` and wait until its run has written a checkpoint.

    :return: the compare process, its log file, the run folder and the worker's pid.
    """
    import time

    from curl_rl.envs.presets import ENV_PATH_VAR

    tests = Path(__file__).resolve().parent
    env = {
        **os.environ,
        ENV_PATH_VAR: str(tests / "envs"),
        "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    argv = [sys.executable, "-m", "curl_rl", "compare", "--env", "dots", "--algo", "ppo", "--arms", "curl"]
    argv += ["--seeds", "1", "--steps", "1000000", "--jobs", "1", "--threads", "1", "--checkpoint-freq", "32"]
    argv += ["--no-probe", "--set", "eval.freq=1000000"]
    log = tmp_path / "compare.log"  # a file, not a pipe: orphaned workers would hold a pipe open
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT)
    run = tmp_path / "runs" / "dots-ppo" / "curl" / "seed0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / LOCK_NAME).exists() and any((run / "checkpoints").glob("*")):
            return proc, log, run, int(json.loads((run / LOCK_NAME).read_text())["pid"])
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no checkpointed run within 120 s:\n{log.read_text()[-3000:]}")


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` exits within ``seconds``; one still alive then is killed (no stray process)."""
    import signal
    import time

    gone = time.monotonic() + seconds
    while time.monotonic() < gone and _pid_alive(pid):
        time.sleep(0.2)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        return False
    return True


def test_sigterm_to_compare_stops_its_workers_and_leaves_resumable_runs(tmp_path: Path) -> None:
    """``kill PID`` of a compare (or a scheduler's time limit) must not leave workers training on."""
    import signal

    proc, log, run, worker = _compare_with_a_checkpointed_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)  # to compare alone, not its process group
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert _gone_within(worker, 30), f"the worker (pid {worker}) kept training after compare got SIGTERM"
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "interrupted: runs in progress saved a checkpoint" in out
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and status["checkpoint"], status
    assert not (run / LOCK_NAME).exists()


def test_workers_of_a_killed_compare_save_their_runs_and_exit(tmp_path: Path) -> None:
    """SIGKILL to compare (the OOM killer, ``timeout --kill-after``, a scheduler's hard limit) cannot
    be handled by compare itself; its workers must notice, checkpoint their runs and exit instead of
    training on as orphans (holding the run locks) and then waiting forever for work."""
    proc, _, run, worker = _compare_with_a_checkpointed_run(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert _gone_within(worker, 60), f"the worker (pid {worker}) lived on after compare was killed"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and status["checkpoint"], status
    assert not (run / LOCK_NAME).exists()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))
