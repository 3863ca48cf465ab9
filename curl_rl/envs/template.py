"""The commented preset template ``curl-rl envs --template`` prints: a starting point for your own env."""

from __future__ import annotations

__all__ = ["PRESET_TEMPLATE"]

PRESET_TEMPLATE = """\
# A curl_rl env preset. Save as my-task.yaml, then:
#   curl-rl compare --env my-task.yaml --arms none,aug,curl --seeds 5 --steps 100000
# or put its folder in CURL_RL_ENV_PATH and use --env my-task.
# Only env, description and algos are required; every other key has the default shown.
name: my-task                      # default: the file name
description: CartPole from 64x64 renders (replace with one line about your env).

env:
  kind: gym                        # any gymnasium id; distractor, dmc and atari are curl_rl's own
  id: CartPole-v1                  # third-party envs: "my_package.my_module:MyEnv-v0" imports the module first
  kwargs: {}                       # passed to gym.make
  # wrappers around the env as gym.make returns it, first innermost, before the pixel wrappers,
  # e.g. MiniGrid: [minigrid.wrappers.RGBImgObsWrapper, minigrid.wrappers.ImgObsWrapper]
  wrappers: []
  image_size: 64                   # observations: HxWx3 uint8 images are used (resized); else rgb_array renders
  grayscale: false
  frame_stack: 3                   # velocities need >= 2 frames
  action_repeat: 1
  max_episode_steps: 500           # in agent steps; null keeps the env's own limit

budgets:                           # optional: without it, give --steps on every run
  quick: 50000
  full: 500000

eval:
  freq: 10000                      # env steps between evaluations
  n_episodes: 10

algos:                             # RL Zoo's shape; hyperparams go straight to the SB3 constructor
  ppo:
    policy: CnnPolicy
    n_envs: 8
    hyperparams:
      n_steps: 128
      batch_size: 256
      n_epochs: 4
      learning_rate: 3.0e-4
    aux:                           # auxiliary-loss overrides for every aux arm (curl-rl arms lists the fields)
      weight: 0.1
  dqn:
    policy: CnnPolicy
    n_envs: 1
    hyperparams:
      buffer_size: 20000
      learning_starts: 1000
      batch_size: 64
"""
