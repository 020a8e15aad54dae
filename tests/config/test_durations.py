import math

import pytest

from mlxclaude.config.units import parse_duration


@pytest.mark.parametrize("value, seconds", [
    (600, 600.0), (0, 0.0), (2.5, 2.5),
    ("10m", 600.0), ("1h30m", 5400.0), ("90s", 90.0), ("500ms", 0.5), ("2d", 172_800.0), ("1w", 604_800.0),
    ("1.5h", 5400.0), (" 1h 30m ", 5400.0), ("10M", 600.0), ("2mins", 120.0), ("1hr5sec", 3605.0),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["10", "", "  ", "soon", "m10", "10 parsecs", "-5m", "1h-30m", "1.m",
                                   -1, math.inf, math.nan, True, None, [10]])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)
