"""Test-wide settings: one torch thread (tiny models are slower with more on a 2-core box)."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)
