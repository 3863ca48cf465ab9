"""SB3's ``Logger``, except that a tag is written at most once per step.

SB3 dumps its logs after each rollout (on-policy) or episode (off-policy); an evaluation callback
dumps too, as SB3's ``EvalCallback`` does. When both fall on one step (always at the end of an
on-policy run, whose last evaluation follows SB3's last dump; at an episode end that meets an
evaluation off-policy) every tag recorded in between reached TensorBoard and ``aux_metrics.csv``
twice at that step. Here the first value of a tag at a step is kept and later ones at the same
step are dropped: the same values plain SB3 would show, minus the duplicates.
"""

from __future__ import annotations

from stable_baselines3.common.logger import Logger

__all__ = ["OncePerStepLogger"]


class OncePerStepLogger(Logger):
    """A ``Logger`` whose :meth:`dump` leaves out the tags already dumped at the same step.

    :param folder: the log folder (as SB3's ``Logger``).
    :param output_formats: the outputs (as SB3's ``Logger``).
    """

    def __init__(self, folder: str | None, output_formats: list) -> None:
        super().__init__(folder, output_formats)
        self._step: int | None = None
        self._dumped: set[str] = set()

    @classmethod
    def replacing(cls, logger: Logger) -> OncePerStepLogger:
        """The same outputs, level and pending values as ``logger``, with once-per-step dumps.

        :param logger: SB3's logger, as ``configure_logger`` built it.
        """
        if isinstance(logger, cls):
            return logger
        new = cls(logger.dir, logger.output_formats)
        new.level = logger.level
        new.name_to_value.update(logger.name_to_value)
        new.name_to_count.update(logger.name_to_count)
        new.name_to_excluded.update(logger.name_to_excluded)
        return new

    def dump(self, step: int = 0) -> None:
        if step != self._step:
            self._step, self._dumped = step, set()
        for key in self._dumped.intersection(self.name_to_value):
            del self.name_to_value[key]
            self.name_to_count.pop(key, None)
            self.name_to_excluded.pop(key, None)
        self._dumped.update(self.name_to_value)
        if self.name_to_value:
            super().dump(step)
