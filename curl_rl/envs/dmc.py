"""DeepMind Control Suite from pixels: a direct dm_control -> gymnasium adapter (extra ``[dmc]``).

Why direct: a generic layer renders through ``physics.render()``, which builds a new camera and
scene on every call, and leaves MuJoCo's default visual quality on (shadows, reflections, skybox,
4x multisampling). On a CPU with Mesa's software EGL that gives 20-70 frames/s. This adapter
switches those off *before the first render* (the offscreen buffer is allocated then) and keeps one
camera for the env's lifetime, which gives several hundred frames/s with the bodies still clear.
``render_quality="default"`` keeps MuJoCo's defaults for side-by-side comparisons.

Headless machines: when ``MUJOCO_GL`` is unset and there is no display, ``egl`` is chosen before
dm_control is first imported (dm_control reads the variable at import time).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from curl_rl.envs.extras import require_extra
from curl_rl.envs.wrappers import FrameStack, ImageObservation

#: CURL's action repeats for the six benchmark tasks (Laskin et al. 2020).
CURL_ACTION_REPEAT: dict[tuple[str, str], int] = {
    ("finger", "spin"): 2,
    ("cartpole", "swingup"): 8,
    ("reacher", "easy"): 4,
    ("cheetah", "run"): 4,
    ("walker", "walk"): 2,
    ("ball_in_cup", "catch"): 4,
}

#: Length of the flattened proprioceptive observation (``info["state"]``) of the six tasks.
DMC_STATE_DIMS: dict[tuple[str, str], int] = {
    ("finger", "spin"): 9,
    ("cartpole", "swingup"): 5,
    ("reacher", "easy"): 6,
    ("cheetah", "run"): 17,
    ("walker", "walk"): 24,
    ("ball_in_cup", "catch"): 8,
}

MUJOCO_GL_CHOICES = (
    "egl (headless; GPU driver or Mesa's software EGL, e.g. apt-get install libegl1 libgl1-mesa-dri)",
    "osmesa (headless software rendering; apt-get install libosmesa6)",
    "glfw (needs a display)",
)

# Render flags switched off in "fast" quality, on top of shadowsize=0 and offsamples=0.
_FAST_RENDER_FLAGS = {"shadow": False, "reflection": False, "skybox": False}

RENDER_QUALITIES = ("fast", "default")


def select_mujoco_gl() -> str | None:
    """Choose ``MUJOCO_GL=egl`` when it is unset on a headless Linux machine.

    Also defaults ``LP_NUM_THREADS=1`` (Mesa llvmpipe's render threads): at 84x84 extra threads
    only add contention, and several env processes would oversubscribe the cores.

    :return: the value of ``MUJOCO_GL`` in effect (None if unset, e.g. on macOS or with a display).
    """
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if "MUJOCO_GL" not in os.environ and sys.platform.startswith("linux") and headless:
        if "dm_control" not in sys.modules:
            os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("LP_NUM_THREADS", "1")
    return os.environ.get("MUJOCO_GL")


def _gl_error(err: BaseException) -> RuntimeError:
    choices = "\n  ".join(MUJOCO_GL_CHOICES)
    return RuntimeError(
        f"dm_control could not render with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} "
        f"({type(err).__name__}: {err}).\nSet the MUJOCO_GL environment variable, before Python "
        f"starts, to one of:\n  {choices}"
    )


def _import_dm_control() -> tuple[Any, Any]:
    select_mujoco_gl()
    try:
        from dm_control import suite
        from dm_control.mujoco import engine
    except ImportError:
        raise
    except Exception as err:
        # dm_control picks its GL backend at import; a missing library or a bad MUJOCO_GL value
        # surfaces here as RuntimeError/AttributeError rather than ImportError.
        raise _gl_error(err) from err
    return suite, engine


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """One dm_control task, observed through a camera as ``H x W x 3`` uint8 frames.

    ``info["state"]`` holds the task's proprioceptive observation, flattened to float32.
    Episodes end by dm_control's own time limit (1000 control steps for the suite tasks), which
    is reported as ``truncated``; a zero discount at the last step is reported as ``terminated``.

    :param domain: suite domain, e.g. ``"cheetah"``.
    :param task: suite task, e.g. ``"run"``.
    :param image_size: side of the rendered square image.
    :param action_repeat: control steps per agent step; rewards are summed, one frame rendered.
    :param camera_id: camera to render (default: 2 for quadruped, as in DrQ/CURL, else 0).
    :param render_quality: ``"fast"`` (no shadows, reflections, skybox or multisampling) or
        ``"default"`` (MuJoCo's visual settings untouched).
    :param task_kwargs: extra keyword arguments for the suite task (``random`` is managed by
        ``reset(seed=...)``).
    :param environment_kwargs: extra keyword arguments for the control environment.
    :param render_mode: None or ``"rgb_array"`` (returns the last observed frame).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        domain: str,
        task: str,
        image_size: int = 84,
        action_repeat: int = 1,
        camera_id: int | None = None,
        render_quality: str = "fast",
        task_kwargs: dict[str, Any] | None = None,
        environment_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        require_extra("dmc", f"dm_control task {domain}-{task}")
        if render_quality not in RENDER_QUALITIES:
            raise ValueError(f"render_quality must be one of {RENDER_QUALITIES}, got {render_quality!r}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        suite, engine = _import_dm_control()
        if (domain, task) not in suite.ALL_TASKS:
            available = ", ".join(f"{d}-{t}" for d, t in sorted(suite.ALL_TASKS))
            raise ValueError(f"unknown dm_control task {domain}-{task}; available: {available}")
        self.domain, self.task = domain, task
        self.image_size = int(image_size)
        self.action_repeat = int(action_repeat)
        self.render_quality = render_quality
        self.render_mode = render_mode
        self.camera_id = camera_id if camera_id is not None else (2 if domain == "quadruped" else 0)

        task_kwargs = dict(task_kwargs or {})
        task_kwargs.setdefault("random", None)
        self._env = suite.load(domain, task, task_kwargs=task_kwargs, environment_kwargs=environment_kwargs)
        physics = self._env.physics
        self._flags: dict[str, bool] = {}
        if render_quality == "fast":
            # Must happen before the first render: the offscreen buffer and shadow map are
            # allocated when the GL context is created.
            physics.model.vis.quality.shadowsize = 0
            physics.model.vis.quality.offsamples = 0
            self._flags = dict(_FAST_RENDER_FLAGS)
        try:
            # One camera for the env's lifetime; physics.render() would rebuild it on every call.
            self._camera = engine.Camera(physics, self.image_size, self.image_size, self.camera_id)
            self._camera.render(render_flag_overrides=self._flags)
        except Exception as err:
            raise _gl_error(err) from err

        spec = self._env.action_spec()
        self.action_space = spaces.Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), spec.shape, np.float32
        )
        self.observation_space = spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        self.state_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self._frame = np.zeros(self.observation_space.shape, dtype=np.uint8)

    def _render(self) -> np.ndarray:
        self._frame = self._camera.render(render_flag_overrides=self._flags)
        return self._frame.copy()

    @staticmethod
    def _flatten(observation: Any) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1) for v in observation.values()])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        :param seed: reseeds the task's random state (initial pose, targets).
        :param options: unused.
        :return: first frame and info (with ``state``).
        """
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed % 2**32)
        time_step = self._env.reset()
        return self._render(), {"state": self._flatten(time_step.observation)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for ``action_repeat`` control steps and render once.

        :param action: action within the action space bounds.
        :return: frame, summed reward, terminated, truncated, info (with ``state``).
        """
        action = np.asarray(action, dtype=np.float64)
        reward = 0.0
        for _ in range(self.action_repeat):
            time_step = self._env.step(action)
            reward += float(time_step.reward or 0.0)
            if time_step.last():
                break
        last = time_step.last()
        terminated = bool(last and time_step.discount == 0.0)
        truncated = bool(last and not terminated)
        info = {"state": self._flatten(time_step.observation)}
        return self._render(), reward, terminated, truncated, info

    def physics_quality(self) -> tuple[int, int]:
        """``(shadowsize, offsamples)`` of the model's visual quality (0, 0 in fast mode)."""
        quality = self._env.physics.model.vis.quality
        return int(quality.shadowsize), int(quality.offsamples)

    def render(self) -> np.ndarray | None:
        """The last observed frame when ``render_mode == "rgb_array"``."""
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release the camera's scene and the physics."""
        camera = getattr(self, "_camera", None)
        if camera is not None:
            del self._camera
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
        super().close()


def make_dmc(
    domain: str,
    task: str,
    *,
    image_size: int = 84,
    grayscale: bool = False,
    frame_stack: int = 3,
    action_repeat: int | None = None,
    render_quality: str = "fast",
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env[np.ndarray, np.ndarray]:
    """Build a pixel DMC env: :class:`DMCEnv` plus frame stacking (CURL: 3 RGB frames).

    :param domain: suite domain.
    :param task: suite task.
    :param image_size: rendered side (84; 100 for CURL's render-100-crop-84 protocol).
    :param grayscale: one luma channel per frame.
    :param frame_stack: frames stacked along channels, newest last.
    :param action_repeat: control steps per agent step; None uses CURL's value for the six
        benchmark tasks (else 1).
    :param render_quality: ``"fast"`` or ``"default"``.
    :param render_mode: None or ``"rgb_array"``.
    :param kwargs: passed to :class:`DMCEnv` (``camera_id``, ``task_kwargs``, ...).
    :return: the wrapped env.
    """
    if action_repeat is None:
        action_repeat = CURL_ACTION_REPEAT.get((domain, task), 1)
    env: gym.Env[np.ndarray, np.ndarray] = DMCEnv(
        domain,
        task,
        image_size=image_size,
        action_repeat=action_repeat,
        render_quality=render_quality,
        render_mode=render_mode,
        **kwargs,
    )
    if grayscale:
        env = ImageObservation(env, image_size, grayscale=True)
    return FrameStack(env, frame_stack)
