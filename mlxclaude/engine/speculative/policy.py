"""When a verify step pays: a step that checks k drafted tokens costs `cost(k)` plain steps and yields 1 + the
accepted drafts. On a GPU or a Mac a decode step is bound by memory bandwidth, so checking 8 tokens costs little
more than 1; on a CPU every token costs its own compute, so only drafts that are nearly all accepted pay.
Nothing is assumed: the cost is measured as it goes (plain and verify steps, timed, per batch size), acceptance
per stream, and drafts are checked only when their expected tokens per second beat plain decoding's. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

MODES = ("auto", "off", "lookup", "draft", "mtp")  # mtp runs as auto while mlx-lm cannot (mtp.py)
EMA = 0.2  # weight of the newest measurement
PROBE_EVERY = 256  # plain steps between two tries while speculation is not paying (auto), so a change is noticed
PROBE_DRAFT = 2  # tokens a try checks: cheap where verifying costs a step per token
PLAIN_FIRST = 4  # plain steps timed before the first try: the yardstick
MIN_GAIN = 1.05  # speculate only for at least this much more expected throughput


@dataclass
class Acceptance:
    """One stream's record: how often its drafted tokens were accepted."""
    rate: float = 0.6  # a guess until it has drafted
    drafted: int = 0
    accepted: int = 0
    verify_steps: int = 0
    plain_steps: int = 0
    since_probe: int = 0

    def verified(self, drafted: int, accepted: int) -> None:
        self.drafted += drafted
        self.accepted += accepted
        self.verify_steps += 1
        self.since_probe = 0
        if drafted:
            self.rate += EMA * (accepted / drafted - self.rate)

    def expected_accepted(self, k: int) -> float:
        """Accepted tokens of k drafts when each is accepted with probability `rate` while the previous were."""
        p = min(max(self.rate, 0.0), 0.999)
        return p * (1 - p ** k) / (1 - p)


@dataclass
class StepCosts:
    """Seconds of a plain decode step and, relative to it, the extra cost of each drafted token checked:
    verify(k) ≈ plain × (1 + slope·k). Both measured; nothing is verified before plain steps have been timed,
    and the first timed verify sets the slope."""
    plain_s: float = 0.0
    plain_steps: int = 0
    slope: Optional[float] = None

    def plain(self, seconds: float) -> None:
        self.plain_s = seconds if self.plain_steps == 0 else self.plain_s + EMA * (seconds - self.plain_s)
        self.plain_steps += 1

    def verify(self, k: int, seconds: float) -> None:
        if self.plain_s <= 0 or k <= 0:
            return
        slope = max(0.0, (seconds / self.plain_s - 1) / k)
        self.slope = slope if self.slope is None else self.slope + EMA * (slope - self.slope)

    def ratio(self, k: int) -> float:
        return 1 + (self.slope if self.slope is not None else 1.0) * k


def draft_length(mode: str, available: int, rows: Sequence[Acceptance], costs: StepCosts) -> int:
    """How many drafted tokens (of `available`) each of the streams decoding (`rows`, their records) may have
    checked this step; 0: a plain step. `costs`: this batch size's. A verify step over B rows costs
    plain × (1 + slope·k) and yields each row 1 + its expected accepted tokens, where a plain step yields B."""
    if mode == "off" or available <= 0:
        return 0
    if mode in ("lookup", "draft"):
        return available
    if costs.plain_steps < PLAIN_FIRST:
        return 0
    if costs.slope is None:
        return min(available, PROBE_DRAFT)  # the first try: what does checking drafts cost here?
    best_k, best_gain = 0, MIN_GAIN
    for k in range(1, available + 1):
        gain = sum(1 + row.expected_accepted(k) for row in rows) / (len(rows) * costs.ratio(k))
        if gain > best_gain:
            best_k, best_gain = k, gain
    if best_k == 0 and min(row.since_probe for row in rows) >= PROBE_EVERY:
        return min(available, PROBE_DRAFT)  # not paying by the estimates: measure again now and then
    return best_k


def pays(mode: str, lengths: Sequence[int], rows: Sequence[Acceptance], costs: StepCosts) -> bool:
    """Whether the drafts the rows actually have (`lengths`: how many each) are still worth a verify step: some
    rows may have found fewer than `draft_length` allowed, or none, and still cost the full width. A try (the
    first, or the one every PROBE_EVERY steps) is always made."""
    if mode != "auto" or costs.slope is None or min(row.since_probe for row in rows) >= PROBE_EVERY:
        return True
    expected = sum(1 + row.expected_accepted(length) for row, length in zip(rows, lengths))
    return expected / (len(rows) * costs.ratio(max(lengths))) > MIN_GAIN
