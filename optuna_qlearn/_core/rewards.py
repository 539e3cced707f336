"""Trial value -> reward, respecting the study direction and the study's value scale.

Rewards are computed *causally*: the reward of a trial depends only on the
values of the trials replayed before it, so every process that replays the same
trials in the same order gets the same rewards.
"""

from __future__ import annotations

import bisect
import math
import sys

REWARD_MODES = ("rank", "improvement", "value")


def _std(values: list[float]) -> float:
    """Sample standard deviation without overflow. Where the plain formula would leave
    the float range (a study may hold 1e200 next to 1.0), it is computed on the values
    scaled to at most 1, so the squares stay finite."""
    n = len(values)
    try:
        mean = sum(values) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
        if math.isfinite(sd):
            return sd
    except OverflowError:
        pass
    top = max(abs(values[0]), abs(values[-1]))  # values are sorted
    if top == 0.0:
        return 0.0
    z = [v / top for v in values]
    mean = math.fsum(z) / len(z)
    var = math.fsum((v - mean) ** 2 for v in z) / (len(z) - 1)
    sd = math.sqrt(var) * top
    return sd if math.isfinite(sd) else math.inf


class RewardModel:
    """Turn objective values into rewards where larger is always better.

    Args:
        mode: ``"rank"`` (default): ``1 - 2 * q`` where ``q`` is the fraction of
            earlier values that are better, so rewards lie in ``[-1, 1]`` whatever
            the scale. ``"improvement"``: ``(previous - new) / scale`` for
            minimization, where ``previous`` is the value of the state the move
            started from. ``"value"``: ``-(new - median) / scale``, the negative
            value of the original design, centred so that ``q_init = 0`` is neutral.
        minimize: Whether the study minimizes.
        clip: Rewards are clipped to ``[-clip, clip]`` (outliers such as a diverged
            run must not dominate the table).

    The scale is the interquartile range of the values seen so far (the standard
    deviation, then 1, as fallbacks), so the default ``alpha`` and ``gamma`` work
    for FID scores near 200 and losses near 1 alike.

    Example:

        .. code-block:: python

            from optuna_qlearn._core.rewards import RewardModel

            rm = RewardModel("improvement", minimize=True)
            rm.observe(200.0)
            rm.observe(180.0)
            r = rm.reward(new=170.0, previous=180.0)  # positive: FID went down
    """

    def __init__(self, mode: str = "rank", minimize: bool = True, clip: float = 5.0) -> None:
        if mode not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got {mode!r}.")
        self.mode = mode
        self.sign = 1.0 if minimize else -1.0
        self.clip = float(clip)
        self._sorted: list[float] = []  # sign * value, ascending = best first

    @property
    def n(self) -> int:
        """Number of values observed."""
        return len(self._sorted)

    def observe(self, value: float) -> None:
        """Add a finished trial's value to the history."""
        if math.isfinite(value):
            bisect.insort(self._sorted, self.sign * value)

    def scale(self) -> float:
        """The current value scale (interquartile range, with fallbacks), finite: values
        spread wider than the largest float get the largest float."""
        s = self._sorted
        n = len(s)
        if n >= 4:
            iqr = s[(3 * (n - 1)) // 4] - s[(n - 1) // 4]
            if iqr > 0:
                return min(iqr, sys.float_info.max)
        if n >= 2:
            sd = _std(s)
            if sd > 0:
                return min(sd, sys.float_info.max)
        return 1.0

    def median(self) -> float:
        """Median of the (signed) values seen so far, 0 when none."""
        s = self._sorted
        if not s:
            return 0.0
        n = len(s)
        return 0.5 * s[(n - 1) // 2] + 0.5 * s[n // 2]  # no overflow near the float max

    def reward(self, new: float, previous: float | None = None) -> float:
        """Reward for reaching a point with value ``new``.

        Call :meth:`reward` *before* :meth:`observe` of the same value.

        Args:
            new: The value of the point reached.
            previous: The value of the point the move started from (needed by
                ``"improvement"``; without it the move is scored against the median).

        Returns:
            The reward, in ``[-clip, clip]``; larger is better.
        """
        x = self.sign * new
        if self.mode == "rank":
            n = len(self._sorted)
            if n == 0:
                return 0.0
            lo = bisect.bisect_left(self._sorted, x)
            hi = bisect.bisect_right(self._sorted, x)
            frac_better = (lo + 0.5 * (hi - lo)) / n
            return 1.0 - 2.0 * frac_better
        ref = self.median() if previous is None or self.mode == "value" else self.sign * previous
        gap = ref - x
        scale = self.scale()
        r = gap / scale if math.isfinite(gap) else (0.5 * ref - 0.5 * x) / (0.5 * scale)
        if not math.isfinite(r):  # beyond the float range: the clip, with the gap's sign
            r = 0.0 if gap == 0 else math.copysign(self.clip, gap)
        return float(max(-self.clip, min(self.clip, r)))

    def failure_reward(self) -> float:
        """Reward for a failed trial or a NaN/inf value: the worst possible."""
        return -1.0 if self.mode == "rank" else -self.clip
