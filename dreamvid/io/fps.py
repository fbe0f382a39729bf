"""Frame rates as exact Fractions: 29.97 fps stays 30000/1001, never an int or a float."""

from __future__ import annotations

from fractions import Fraction
from typing import Union


from ..errors import DreamvidError


# NTSC rates that containers and UIs round (29.97, 23.976); snapped back to their exact value.
_NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))

def snap_fps(x: float) -> Fraction:
    """A float rate as an exact Fraction: 29.97/29.97003 -> 30000/1001, 12.5 -> 25/2."""
    for rate in _NTSC_RATES:
        if abs(x - rate) < 1e-3:  # 29.97 vs 30000/1001 differ by 3e-5; 29.97 vs 30 by 3e-2
            return rate
    return Fraction(x).limit_denominator(1001)

def parse_fps(value: Union[Fraction, int, float, str]) -> Fraction:
    """A frame rate as an exact positive Fraction.

    Accepts Fraction, int, float or text ('25', '30000/1001', '29.97'). Decimal forms of the NTSC
    rates (23.976, 29.97, 59.94) become 24000/1001, 30000/1001, 60000/1001.
    """
    try:
        if isinstance(value, (Fraction, int)) and not isinstance(value, bool):
            fps = Fraction(value)
        elif isinstance(value, str) and "/" in value:
            fps = Fraction(value.strip())
        else:
            fps = snap_fps(float(value))
    except (TypeError, ValueError, ZeroDivisionError):
        raise DreamvidError(f"invalid frame rate {value!r}: use e.g. 25, 29.97 or 30000/1001")
    if fps <= 0:
        raise DreamvidError(f"invalid frame rate {value!r}: it must be positive")
    return fps
