"""Figures for people: sizes, durations, rates."""

from __future__ import annotations

from datetime import timedelta

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"


def human_duration(value: timedelta | float | None) -> str:
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def human_rate(bytes_per_second: float | None) -> str:
    return "—" if bytes_per_second is None else f"{human_bytes(bytes_per_second)}/s"
