"""The overview's chart: runs and failures per minute over the last hour, as inline SVG (no
script, no library, nothing fetched from elsewhere: the page must work offline)."""
from __future__ import annotations

import datetime as _dt
from html import escape
from typing import List, Sequence

from ..history import MinuteFigures

__all__ = ['throughput_svg']

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 24


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 x 10^n at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return max(step * factor, 1)
        step *= 10


def throughput_svg(minutes: Sequence[MinuteFigures]) -> str:
    """Bars of runs per minute (failures stacked in red), oldest left; a title per bar."""
    top = _nice_max(max((m.runs for m in minutes), default=0))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / max(len(minutes), 1)
    parts: List[str] = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" '
        'role="img" aria-label="task runs per minute, last hour">' % (WIDTH, HEIGHT)]
    for fraction in (0, 0.5, 1):
        y = TOP + inner_h * (1 - fraction)
        parts.append('<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>'
                     % (LEFT, y, WIDTH - RIGHT, y))
        parts.append('<text class="axis" x="%d" y="%.1f" text-anchor="end">%g</text>'
                     % (LEFT - 4, y + 4, top * fraction))
    for index, minute in enumerate(minutes):
        x = LEFT + index * slot
        ok = minute.runs - minute.failures
        label = '%s: %d runs, %d failed' % (
            _dt.datetime.fromtimestamp(minute.minute).strftime('%H:%M'), minute.runs,
            minute.failures)
        parts.append('<g><title>%s</title>' % escape(label))
        height_ok = inner_h * ok / top
        height_bad = inner_h * minute.failures / top
        base = TOP + inner_h
        if ok:
            parts.append('<rect class="ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>'
                         % (x + 1, base - height_ok, max(slot - 2, 1), height_ok))
        if minute.failures:
            parts.append('<rect class="bad" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>'
                         % (x + 1, base - height_ok - height_bad, max(slot - 2, 1),
                            height_bad))
        parts.append('</g>')
    for index in (0, len(minutes) // 2, len(minutes) - 1):
        if 0 <= index < len(minutes):
            text = _dt.datetime.fromtimestamp(minutes[index].minute).strftime('%H:%M')
            parts.append('<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                         % (LEFT + (index + 0.5) * slot, HEIGHT - 6, escape(text)))
    parts.append('</svg>')
    return ''.join(parts)
