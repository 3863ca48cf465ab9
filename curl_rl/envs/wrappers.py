"""Gymnasium wrappers that turn any env with ``rgb_array`` rendering into an SB3-ready pixel env.

The layout SB3 expects for images is channel-last ``uint8`` (it transposes to channel-first
itself); stacked frames go along the channel axis (``H x W x (k*C)``), newest frame last, which is
what SB3's ``VecFrameStack`` would produce. Wrapping order (innermost first) is::

    env --ActionRepeat--> PixelObservation --FrameStack--> ...

so an env renders once per agent step, not once per repeated action.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ImageSize = int | tuple[int, int]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _hw(image_size: ImageSize) -> tuple[int, int]:
    if isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = (int(v) for v in image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    return height, width


def resize_image(image: np.ndarray, image_size: ImageSize) -> np.ndarray:
    """Resize an ``H x W x C`` uint8 image with area averaging (no-op when the size matches).

    Pillow is used (it comes with matplotlib, a core dependency) rather than OpenCV, so the pixels
    are the same whichever optional extras are installed.

    :param image: ``H x W x C`` uint8 array.
    :param image_size: output side, or ``(height, width)``.
    :return: the resized ``h x w x C`` uint8 array.
    """
    height, width = _hw(image_size)
    if image.shape[0] == height and image.shape[1] == width:
        return image
    from PIL import Image

    channels = image.shape[2]
    if channels == 1:
        pil = Image.fromarray(np.ascontiguousarray(image[:, :, 0]))
    else:
        pil = Image.fromarray(np.ascontiguousarray(image))
    out = np.asarray(pil.resize((width, height), Image.Resampling.BOX))
    return out.reshape(height, width, channels)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an ``H x W x 3`` uint8 image, as ``H x W x 1`` uint8.

    :param image: RGB image.
    :return: grayscale image with a channel axis of size 1.
    """
    gray = image.astype(np.float32) @ _LUMA
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[:, :, None]


class ActionRepeat(gym.Wrapper[Any, Any, Any, Any]):
    """Repeat each action ``repeat`` times, summing rewards and stopping early at episode end.

    :param env: env to wrap.
    :param repeat: number of underlying steps per agent step (1 = no-op).
    """

    def __init__(self, env: gym.Env[Any, Any], repeat: int) -> None:
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        super().__init__(env)
        self.repeat = int(repeat)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step ``repeat`` times with the same action.

        :param action: the action.
        :return: the last observation, the summed reward, and the last flags and info.
        """
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class ImageObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """Resize and optionally grayscale an env whose observations already are RGB images.

    :param env: env with a ``Box(0, 255, (H, W, 3), uint8)`` observation space.
    :param image_size: output side or ``(height, width)``.
    :param grayscale: keep one luma channel instead of RGB.
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], image_size: ImageSize, grayscale: bool = False) -> None:
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3):
            raise ValueError(f"ImageObservation needs an H x W x C uint8 Box space, got {space}")
        self.image_size = _hw(image_size)
        self.grayscale = bool(grayscale)
        channels = 1 if grayscale else space.shape[2]
        self.observation_space = spaces.Box(0, 255, (*self.image_size, channels), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Transform one frame.

        :param observation: RGB frame.
        :return: resized (and grayscaled) frame.
        """
        frame = resize_image(observation, self.image_size)
        return to_grayscale(frame) if self.grayscale else frame


class PixelObservation(gym.Wrapper[np.ndarray, Any, Any, Any]):
    """Replace observations by the env's ``rgb_array`` render; keep the old ones as ``info["state"]``.

    :param env: env created with ``render_mode="rgb_array"``.
    :param image_size: output side or ``(height, width)``.
    :param grayscale: keep one luma channel instead of RGB.
    :param state_key: info key for the original (flattened, float32) observation; None to drop it.
        Only kept when the original observation space is a Box (a flat vector of fixed length).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        image_size: ImageSize,
        grayscale: bool = False,
        state_key: str | None = "state",
    ) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                "PixelObservation needs an env created with render_mode='rgb_array' "
                f"(got render_mode={env.render_mode!r}), e.g. gym.make(id, render_mode='rgb_array')"
            )
        self.image_size = _hw(image_size)
        self.grayscale = bool(grayscale)
        self.observation_space = spaces.Box(0, 255, (*self.image_size, 1 if grayscale else 3), np.uint8)
        self.state_key = state_key if isinstance(env.observation_space, spaces.Box) else None
        self.state_dim = int(np.prod(env.observation_space.shape or ())) if self.state_key is not None else None

    def _pixels(self) -> np.ndarray:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise RuntimeError(f"render() of {self.env} did not return an H x W x 3 array: {type(frame)}")
        frame = resize_image(frame[:, :, :3], self.image_size)
        return to_grayscale(frame) if self.grayscale else np.ascontiguousarray(frame)

    def _with_state(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        if self.state_key is not None:
            info = dict(info)
            info[self.state_key] = np.asarray(obs, dtype=np.float32).reshape(-1)
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and render the first frame.

        :param seed: seed for the wrapped env.
        :param options: passed through.
        :return: first frame and info.
        """
        obs, info = self.env.reset(seed=seed, options=options)
        return self._pixels(), self._with_state(obs, info)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and render.

        :param action: the action.
        :return: frame, reward, terminated, truncated, info (with the state).
        """
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._pixels(), reward, terminated, truncated, self._with_state(obs, info)


class FrameStack(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """Stack the last ``n`` frames along the channel axis, newest last.

    On reset the stack is filled with copies of the first frame.

    :param env: env with an ``H x W x C`` uint8 observation space.
    :param n: number of frames (1 = no-op in content, kept for a uniform chain).
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], n: int) -> None:
        if n < 1:
            raise ValueError(f"frame_stack must be >= 1, got {n}")
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
            raise ValueError(f"FrameStack needs an H x W x C image space, got {space}")
        self.n = int(n)
        height, width, self.channels = space.shape
        self.observation_space = spaces.Box(0, 255, (height, width, self.channels * self.n), np.uint8)
        self._stack = np.zeros(self.observation_space.shape, dtype=np.uint8)

    @property
    def frame_channels(self) -> int:
        """Channels of one stacked frame (read by curl_rl's augmentations through the VecEnv)."""
        return int(self.channels)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and fill the stack with the first frame.

        :param seed: seed for the wrapped env.
        :param options: passed through.
        :return: stacked first observation and info.
        """
        obs, info = self.env.reset(seed=seed, options=options)
        self._stack[:] = np.tile(obs, (1, 1, self.n))
        return self._stack.copy(), info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Push a frame: drop the oldest, append the newest at the end.

        :param observation: newest frame.
        :return: the stack (a copy, so callers may keep it).
        """
        c = self.channels
        if self.n > 1:
            self._stack[:, :, :-c] = self._stack[:, :, c:]
        self._stack[:, :, -c:] = observation
        return self._stack.copy()


def apply_wrappers(env: gym.Env[Any, Any], wrappers: list[dict[str, Any]]) -> gym.Env[Any, Any]:
    """Put a preset's ``wrappers:`` around ``env``, first entry innermost.

    :param env: the env as ``gym.make`` returned it.
    :param wrappers: ``[{"class": "module.Class", "kwargs": {...}}]``.
    :return: the wrapped env.
    :raises ValueError: naming the entry whose class cannot be imported or built.
    """
    import importlib

    for i, entry in enumerate(wrappers):
        module_name, _, class_name = entry["class"].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"env wrappers[{i}]: cannot import {entry['class']} ({exc})") from exc
        try:
            env = cls(env, **entry.get("kwargs", {}))
        except Exception as exc:
            raise ValueError(
                f"env wrappers[{i}]: {entry['class']}(env, **{entry.get('kwargs', {})}) failed: {exc}"
            ) from exc
    return env


def wrap_pixels(
    env: gym.Env[Any, Any],
    *,
    image_size: ImageSize = 84,
    grayscale: bool = False,
    frame_stack: int = 3,
    action_repeat: int = 1,
    state_key: str | None = "state",
) -> gym.Env[np.ndarray, Any]:
    """Make a pixel env out of any gymnasium env.

    If the env's observations already are RGB images (``H x W x 3`` uint8 Box) they are used;
    otherwise the env must have been created with ``render_mode="rgb_array"`` and its renders
    become the observations, the original observation going to ``info[state_key]``.

    :param env: the env.
    :param image_size: side of the output image, or ``(height, width)``.
    :param grayscale: one luma channel per frame instead of RGB.
    :param frame_stack: frames stacked along channels (newest last).
    :param action_repeat: underlying steps per agent step (rewards summed).
    :param state_key: info key for the ground-truth state (renders only); None to drop it.
    :return: env with a ``Box(0, 255, (H, W, frame_stack * C), uint8)`` observation space.
    """
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    space = env.observation_space
    shape = tuple(space.shape or ())
    is_image = isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(shape) == 3 and shape[2] in (1, 3)
    if is_image:
        if _hw(image_size) != shape[:2] or (grayscale and shape[2] == 3):
            env = ImageObservation(env, image_size, grayscale)
    else:
        env = PixelObservation(env, image_size, grayscale, state_key)
    return FrameStack(env, frame_stack)
