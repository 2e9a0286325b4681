"""A pool's metric history: every `SAMPLE_PERIOD` (30 s, as the service takes them) of the
core's clock, the value of each measured variable (`names.MEASURED`), kept for `HISTORY`.

The service's samples reach a formula about a minute late and some go missing; the core's are
there at once and none is missed (a pool's first sample is taken when autoscale is enabled on
it). The history lives in memory: a restarted core starts a new one, as a pool whose samples
have not reached the formula yet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SAMPLE_PERIOD = 30.0
HISTORY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    """The measured variables' values at `time` (epoch seconds)."""

    time: float
    values: Mapping[str, float]


class MetricHistory:
    """Samples, oldest first; those older than `HISTORY` are dropped as new ones come."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque()

    @property
    def samples(self) -> Sequence[Sample]:
        return self._samples

    def due(self, now: float) -> bool:
        """Whether a sample is due at `now`: none taken yet, or the last one a period ago."""
        return not self._samples or now - self._samples[-1].time >= SAMPLE_PERIOD

    def next_due(self) -> float:
        """When the next sample is due (epoch seconds); 0 when none was taken."""
        return self._samples[-1].time + SAMPLE_PERIOD if self._samples else 0.0

    def record(self, time: float, values: Mapping[str, float]) -> None:
        self._samples.append(Sample(time, dict(values)))
        while self._samples and time - self._samples[0].time > HISTORY:
            self._samples.popleft()
