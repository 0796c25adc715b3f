"""Run by test_train.py under torchrun: train the toy task with DDP, save each rank's weights."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import CountingTask, toy_model  # noqa: E402

from icarena.pretraining.train import TrainConfig, train  # noqa: E402

out = Path(sys.argv[1])
model = toy_model()
cfg = TrainConfig(steps=15, batch_size=8, lr=3e-3, warmup_steps=2, ckpt_every=5, seed=1,
                  progress=False, threads=1, device="cpu")
train(model, CountingTask(), cfg, out / "run", config={})
rank = dist.get_rank()
save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          str(out / f"rank{rank}.safetensors"))
dist.destroy_process_group()
