"""A pure-numpy pixel task where the state that matters is small and the rest of the frame is clutter.

The agent (a filled square) must reach a target (a plus sign). Each time it does, it scores +1 and
the target jumps elsewhere, so an episode holds many reaches and the return counts them. Around
them, optional distractors (squares and pluses whose colours approach the agent's and target's as
``difficulty`` grows) drift and bounce, and an optional noise texture scrolls behind everything.

Only four numbers matter for the optimal policy (agent xy, target xy); they are returned as
``info["state"]`` so that representation probes can check what an encoder has kept.

Everything that matters stays at least ``size // 8`` pixels away from the frame border, so a random
crop that removes up to that many pixels from one side (64 -> 56 crops) never cuts off the agent or
the target. Distractors may roam the whole frame.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: Discrete action meanings: index -> (dx, dy) in units of the agent speed; image y grows downwards.
DISCRETE_MOVES = np.array([[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]], dtype=np.float64)
ACTION_MEANINGS = ("NOOP", "UP", "DOWN", "LEFT", "RIGHT")

AGENT_COLOUR = np.array([235, 90, 50], dtype=np.float64)
TARGET_COLOUR = np.array([60, 215, 95], dtype=np.float64)
PLAIN_BACKGROUND = np.array([28, 30, 38], dtype=np.float64)

#: Length of ``info["state"]``: agent x, agent y, target x, target y, each divided by the frame size.
STATE_DIM = 4


class DistractorEnv(gym.Env[np.ndarray, Any]):
    """Reach-the-target from pixels, with togglable distractors and background.

    :param size: side of the square RGB observation, in pixels (at least 32).
    :param continuous: if True the action is a 2-D velocity in [-1, 1]^2, else one of 5 moves
        (noop, up, down, left, right).
    :param difficulty: 0 (easy) .. 1 (hard). Raises the number and speed of distractors, how close
        their colours come to the agent's and the target's, and the contrast and speed of the
        background texture. It does not change the agent, the target or the reward.
    :param distractors: draw moving distractor objects.
    :param background: draw a scrolling noise texture instead of a plain dark background.
    :param n_distractors: override the number of distractors that ``difficulty`` would choose.
    :param shaping: weight of the dense shaping reward (decrease of the agent-target distance,
        in units of the arena width); 0 leaves only the +1 per reach.
    :param render_mode: None or ``"rgb_array"`` (returns the current observation frame).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        size: int = 64,
        continuous: bool = False,
        difficulty: float = 0.25,
        distractors: bool = True,
        background: bool = True,
        n_distractors: int | None = None,
        shaping: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        if size < 32:
            raise ValueError(f"size must be at least 32 pixels, got {size}")
        if not 0.0 <= difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
        if n_distractors is not None and n_distractors < 0:
            raise ValueError(f"n_distractors must be >= 0, got {n_distractors}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = int(size)
        self.continuous = bool(continuous)
        self.difficulty = float(difficulty)
        self.use_distractors = bool(distractors)
        self.use_background = bool(background)
        self.shaping = float(shaping)
        self.render_mode = render_mode

        scale = self.size / 64.0
        self.margin = self.size // 8
        self.agent_size = max(3, round(8 * scale))
        self.target_size = max(5, round(11 * scale)) | 1  # odd so the plus has a centre row/column
        self.target_arm = max(1, self.target_size // 3)
        self.agent_speed = 3.0 * scale
        # Reach when the centres are closer (per axis) than this; larger than a step so a
        # discrete agent cannot step over the target.
        self.reach = 0.5 * (self.agent_size + self.target_size) * 0.8
        self.respawn_min_dist = 16.0 * scale
        # Centres of the agent and the target live in [lo, hi] so the objects stay inside the
        # crop-safe inner square.
        self.lo = self.margin + self.target_size / 2.0
        self.hi = self.size - self.margin - self.target_size / 2.0
        self.span = self.hi - self.lo

        d = self.difficulty
        if not self.use_distractors:
            self.n_distractors = 0
        elif n_distractors is not None:
            self.n_distractors = int(n_distractors)
        else:
            self.n_distractors = round(2 + 6 * d)
        self.distractor_speed = (0.5 + 2.0 * d) * scale
        self.colour_distance = 12.0 + 150.0 * (1.0 - d)
        self.noise_amplitude = 25.0 + 75.0 * d
        self.scroll_speed = (0.3 + 1.7 * d) * scale

        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space: spaces.Space[Any]
        if self.continuous:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        else:
            self.action_space = spaces.Discrete(len(DISCRETE_MOVES))

        self._agent = np.zeros(2)
        self._target = np.zeros(2)
        self._d_pos = np.zeros((self.n_distractors, 2))
        self._d_vel = np.zeros((self.n_distractors, 2))
        self._d_colour = np.zeros((self.n_distractors, 3), dtype=np.uint8)
        self._d_is_plus = np.zeros(self.n_distractors, dtype=bool)
        self._texture = np.zeros((2 * self.size, 2 * self.size, 3), dtype=np.uint8)
        self._bg_offset = np.zeros(2)
        self._bg_velocity = np.zeros(2)
        self._frame = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        self._prev_dist = 0.0
        self._reached = 0
        self._agent_colour = AGENT_COLOUR.astype(np.uint8)
        self._target_colour = TARGET_COLOUR.astype(np.uint8)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: new agent/target/distractor positions and a new background texture.

        :param seed: seeds the episode random stream (gymnasium semantics).
        :param options: unused.
        :return: first observation and info (with ``state``).
        """
        super().reset(seed=seed)
        rng = self.np_random
        self._agent = rng.uniform(self.lo, self.hi, size=2)
        self._target = self._spawn_target()
        self._prev_dist = self._distance()
        self._reached = 0

        n = self.n_distractors
        if n:
            extent = self.size - self.agent_size
            self._d_pos = rng.uniform(0, extent, size=(n, 2))
            angle = rng.uniform(0, 2 * np.pi, size=n)
            speed = self.distractor_speed * rng.uniform(0.6, 1.4, size=n)
            self._d_vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
            self._d_is_plus = np.arange(n) % 2 == 1
            refs = np.where(self._d_is_plus[:, None], TARGET_COLOUR, AGENT_COLOUR)
            # Each distractor sits at a set RGB distance from the colour it imitates: far at
            # difficulty 0, a few levels at difficulty 1, never exactly equal.
            direction = rng.normal(size=(n, 3))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            colours = refs + direction * self.colour_distance
            clipped = np.clip(colours, 0, 255)
            # Clipping can pull a colour back towards its reference; mirror those instead.
            short = np.linalg.norm(clipped - refs, axis=1) < 0.7 * self.colour_distance
            colours[short] = refs[short] - direction[short] * self.colour_distance
            self._d_colour = np.clip(colours, 0, 255).astype(np.uint8)

        self._make_texture()
        self._render_frame()
        return self._frame.copy(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move the agent, the distractors and the background by one tick.

        :param action: a move index (discrete) or a 2-D velocity in [-1, 1] (continuous).
        :return: observation, reward, terminated (always False: the task is continuing and
            episodes end by time limit), truncated (False; the TimeLimit wrapper truncates), info.
        """
        if self.continuous:
            move = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        else:
            move = DISCRETE_MOVES[int(action)]
        self._agent = np.clip(self._agent + move * self.agent_speed, self.lo, self.hi)

        reward = 0.0
        dist = self._distance()
        if np.all(np.abs(self._agent - self._target) < self.reach):
            reward += 1.0
            self._reached += 1
            self._target = self._spawn_target()
            dist = self._distance()
        else:
            reward += self.shaping * (self._prev_dist - dist) / self.span
        self._prev_dist = dist

        if self.n_distractors:
            self._move_distractors()
        if self.use_background:
            self._bg_offset = (self._bg_offset + self._bg_velocity) % self.size

        self._render_frame()
        return self._frame.copy(), reward, False, False, self._info()

    def render(self) -> np.ndarray | None:
        """Return the current frame when ``render_mode == "rgb_array"``, else None."""
        if self.render_mode == "rgb_array":
            return self._frame.copy()
        return None

    def get_action_meanings(self) -> list[str]:
        """Names of the discrete actions (as ALE envs provide)."""
        return list(ACTION_MEANINGS)

    # ------------------------------------------------------------------ internals
    def _distance(self) -> float:
        return float(np.hypot(*(self._agent - self._target)))

    def _spawn_target(self) -> np.ndarray:
        rng = self.np_random
        # Rejection sampling keeps new targets away from the agent; a handful of tries always
        # suffices in practice, the fallback only guards the loop.
        for _ in range(32):
            target = rng.uniform(self.lo, self.hi, size=2)
            if np.hypot(*(target - self._agent)) >= self.respawn_min_dist:
                return target
        return target

    def _move_distractors(self) -> None:
        pos = self._d_pos + self._d_vel
        extent = self.size - self.agent_size
        low = pos < 0
        high = pos > extent
        # Reflect off the frame border.
        pos = np.where(low, -pos, np.where(high, 2 * extent - pos, pos))
        self._d_vel = np.where(low | high, -self._d_vel, self._d_vel)
        self._d_pos = pos

    def _make_texture(self) -> None:
        size = self.size
        if not self.use_background:
            self._texture[:] = PLAIN_BACKGROUND.astype(np.uint8)
            self._bg_velocity[:] = 0.0
            return
        rng = self.np_random
        amp = self.noise_amplitude
        block = max(2, size // 16)
        coarse_n = -(-size // block)
        base = rng.uniform(30, 90, size=3)
        coarse = rng.uniform(-amp, amp, size=(coarse_n, coarse_n, 3))
        coarse = np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)[:size, :size]
        fine = rng.uniform(-amp / 2, amp / 2, size=(size, size, 3))
        tile = np.clip(base + coarse + fine, 0, 255).astype(np.uint8)
        # Tiling 2x2 makes scrolling a plain slice: any size x size window wraps seamlessly.
        self._texture = np.tile(tile, (2, 2, 1))
        self._bg_offset = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        self._bg_velocity = np.array([np.cos(angle), np.sin(angle)]) * self.scroll_speed

    def _draw_square(self, x: float, y: float, side: int, colour: np.ndarray) -> None:
        x0, y0 = int(x), int(y)
        self._frame[y0 : y0 + side, x0 : x0 + side] = colour

    def _draw_plus(self, x: float, y: float, side: int, arm: int, colour: np.ndarray) -> None:
        x0, y0 = int(x), int(y)
        mid = (side - arm) // 2
        self._frame[y0 + mid : y0 + mid + arm, x0 : x0 + side] = colour
        self._frame[y0 : y0 + side, x0 + mid : x0 + mid + arm] = colour

    def _render_frame(self) -> None:
        size = self.size
        ox, oy = int(self._bg_offset[0]), int(self._bg_offset[1])
        self._frame[:] = self._texture[oy : oy + size, ox : ox + size]
        for i in range(self.n_distractors):
            x, y = self._d_pos[i]
            if self._d_is_plus[i]:
                self._draw_plus(x, y, self.target_size, self.target_arm, self._d_colour[i])
            else:
                self._draw_square(x, y, self.agent_size, self._d_colour[i])
        # The true objects are drawn last so distractors never hide them.
        half_t = self.target_size / 2.0
        tx, ty = self._target
        self._draw_plus(tx - half_t + 0.5, ty - half_t + 0.5, self.target_size, self.target_arm, self._target_colour)
        half_a = self.agent_size / 2.0
        ax, ay = self._agent
        self._draw_square(ax - half_a + 0.5, ay - half_a + 0.5, self.agent_size, self._agent_colour)

    def _info(self) -> dict[str, Any]:
        state = np.array(
            [self._agent[0], self._agent[1], self._target[0], self._target[1]], dtype=np.float32
        ) / np.float32(self.size)
        distractors = (self._d_pos + self.agent_size / 2.0).astype(np.float32).reshape(-1) / np.float32(self.size)
        return {"state": state, "distractors": distractors, "targets_reached": self._reached}
