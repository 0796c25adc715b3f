import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from icarena.errors import CheckpointError
from icarena.pretraining.model import load_model
from icarena.pretraining.train import TrainConfig, load_checkpoint, lr_at, train

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import CountingTask, toy_model, toy_model_config  # noqa: E402


def cfg(**kw) -> TrainConfig:
    base = dict(steps=40, batch_size=16, lr=3e-3, warmup_steps=5, ckpt_every=10, log_every=5,
                eval_every=20, seed=7, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def run_config() -> dict:
    return {"model": dataclasses.asdict(toy_model_config())}


def test_train_learns_and_writes_run_dir(tmp_path):
    result = train(toy_model(), CountingTask(), cfg(steps=120), tmp_path, config=run_config())
    assert len(result.losses) == 120
    assert sum(result.losses[-10:]) / 10 < 0.5 * sum(result.losses[:10]) / 10
    assert result.final_eval["accuracy"] > 0.8
    for name in ("config.json", "model.safetensors", "ckpt.pt"):
        assert (tmp_path / name).is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] == 120 and len(state["losses"]) == 120
    model, config = load_model(tmp_path)
    assert config["train"]["steps"] == 120
    x = torch.arange(8)[None] % 11
    assert (model(x).argmax(-1) == (x + 1) % 11).float().mean() > 0.8


def test_same_seed_same_curve(tmp_path):
    a = train(toy_model(), CountingTask(), cfg(), tmp_path / "a", config=run_config())
    b = train(toy_model(), CountingTask(), cfg(), tmp_path / "b", config=run_config())
    assert a.losses == b.losses


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    full = train(toy_model(), CountingTask(), cfg(), tmp_path / "full", config=run_config())
    with pytest.raises(KeyboardInterrupt):
        train(toy_model(), CountingTask(fail_at=25), cfg(), tmp_path / "killed",
              config=run_config())
    assert load_checkpoint(tmp_path / "killed" / "ckpt.pt")["step"] == 20
    resumed = train(toy_model(seed=99), CountingTask(), cfg(), tmp_path / "killed",
                    config=run_config(), resume=True)
    assert resumed.losses == full.losses
    wa = load_file(tmp_path / "full" / "model.safetensors")
    wb = load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_other_config(tmp_path):
    train(toy_model(), CountingTask(), cfg(steps=10), tmp_path, config=run_config())
    with pytest.raises(CheckpointError, match=r"differ .*train\.lr: 0\.003 -> 0\.01"):
        train(toy_model(), CountingTask(), cfg(steps=10, lr=1e-2), tmp_path,
              config=run_config(), resume=True)


def test_resume_accepts_settings_that_do_not_define_the_run(tmp_path):
    """More steps, other logging / checkpointing / threads: a finished N-step run resumed with
    2N steps trains steps N+1..2N."""
    train(toy_model(), CountingTask(), cfg(steps=10), tmp_path, config=run_config())
    more = train(toy_model(), CountingTask(), cfg(steps=20, log_every=2, ckpt_every=4,
                                                  threads=1), tmp_path, config=run_config(),
                 resume=True)
    assert len(more.losses) == 20
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 20


def test_existing_run_is_not_overwritten(tmp_path):
    train(toy_model(), CountingTask(), cfg(steps=10), tmp_path, config=run_config())
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(toy_model(seed=3), CountingTask(), cfg(steps=10), tmp_path, config=run_config())
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_resume_of_a_run_without_checkpoint_starts_at_step_zero(tmp_path):
    """A run killed before its first checkpoint resumes from the start (the Python API; the
    command line refuses a --resume where no run exists at all)."""
    fresh = train(toy_model(), CountingTask(), cfg(), tmp_path / "a", config=run_config())
    resumed = train(toy_model(), CountingTask(), cfg(), tmp_path / "b", config=run_config(),
                    resume=True)
    assert resumed.losses == fresh.losses


def test_config_json_is_written_with_the_first_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(toy_model(), CountingTask(fail_at=5), cfg(), tmp_path / "r", config=run_config())
    assert not (tmp_path / "r").exists()  # nothing worth keeping: the failed start is undone
    with pytest.raises(KeyboardInterrupt):
        train(toy_model(), CountingTask(fail_at=15), cfg(), tmp_path / "r", config=run_config())
    assert {"config.json", "model.safetensors", "ckpt.pt"} <= {
        p.name for p in (tmp_path / "r").iterdir()}


def test_lr_schedule_warmup_and_cosine():
    c = TrainConfig(steps=100, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, c) == pytest.approx(0.1)
    assert lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(100, c) == pytest.approx(0.1)
    assert lr_at(55, c) == pytest.approx(0.55)


def test_ddp_two_ranks_end_with_identical_weights(tmp_path):
    worker = Path(__file__).parent / "ddp_worker.py"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(worker), str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = load_file(tmp_path / "rank0.safetensors")
    w1 = load_file(tmp_path / "rank1.safetensors")
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # rank 0 alone wrote the run dir; the weights moved away from the initialisation
    assert (tmp_path / "run" / "model.safetensors").is_file()
    init = toy_model().state_dict()
    assert any(not torch.equal(init[k], w0[k]) for k in w0)


def test_in_memory_training_writes_nothing_and_matches_a_run_dir(tmp_path, monkeypatch):
    """out_dir=None: no files at all; the weights equal those of the same run with a run dir,
    whose config.json records the model config without a ``config`` argument (load_model)."""
    monkeypatch.chdir(tmp_path)
    mem_model = toy_model()
    mem = train(mem_model, CountingTask(), cfg(steps=20), None)
    assert list(tmp_path.iterdir()) == [] and mem.out_dir is None
    assert mem.config["model"] == dataclasses.asdict(toy_model_config())
    disk_model = toy_model()
    disk = train(disk_model, CountingTask(), cfg(steps=20), tmp_path / "run")  # no config=
    assert disk.losses == mem.losses
    loaded, config = load_model(tmp_path / "run")
    a, b = loaded.state_dict(), mem_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(Exception, match="resume=True needs an out_dir"):
        train(toy_model(), CountingTask(), cfg(steps=2), None, resume=True)
