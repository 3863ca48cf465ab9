import os

import torch

# tests share two cores with each other (xdist) and with other work
torch.set_num_threads(1)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
