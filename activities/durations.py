"""Durations as configuration writes them: ``90s``, ``15m``, ``4h``, ``3d``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``"4h"`` -> ``14400``: a whole number and one unit (s, m, h or d), in seconds.

    Raises ``ValueError`` with a message saying how to write one; a bare number is refused,
    since ``90`` could mean seconds, minutes or hours.
    """
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit, like 90s, 15m, 4h or 3d"
        )
    return int(match.group(1)) * _SECONDS[match.group(2)]
