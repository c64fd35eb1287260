"""A small scatter/line plotter drawn with OpenCV (no matplotlib needed): per-frame PSNR logs and benchmark PNGs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vsr.io.atomic import atomic_output

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    line: bool = False
    point_labels: list[str] = field(default_factory=list)
    markers: bool | None = None  # None: a marker per point unless a line has more than 60 points


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e * m for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                for m in (1, 2, 5) if lo <= 10.0**e * m <= hi]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9))) / 2
    while (hi - lo) / step > 8:
        step *= 2
    return [round(v, 6) for v in np.arange(math.ceil(lo / step) * step, hi + 1e-9, step)]


_MARGINS = (70, 20, 52, 50)  # left, right, top, bottom of a panel, pixels


@dataclass(frozen=True)
class _Axes:
    """One panel's data → pixel mapping."""

    ox: int
    w: int
    h: int
    x0: float
    x1: float
    y0: float
    y1: float
    logx: bool

    def px(self, x: float, y: float) -> tuple[int, int]:
        left, right, top, bottom = _MARGINS
        if self.logx:
            fx = (math.log(x) - math.log(self.x0)) / (math.log(self.x1) - math.log(self.x0))
        else:
            fx = (x - self.x0) / (self.x1 - self.x0)
        fy = (y - self.y0) / (self.y1 - self.y0)
        return self.ox + left + int(fx * (self.w - left - right)), top + int((1 - fy) * (self.h - top - bottom))


def plot(panels: list[tuple[str, list[Series]]], path: Path, *, xlabel: str, ylabel: str, logx: bool = False,
         size: tuple[int, int] = (640, 480)) -> None:
    """Write one PNG with a panel per ``(title, series)``, side by side."""
    w, h = size
    canvas = np.full((h, w * len(panels), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, (title, series) in enumerate(panels):
        ox = k * w
        xs = [x for s in series for x in s.xs]
        ys = [y for s in series for y in s.ys]
        if not xs:
            continue
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if logx:
            x0, x1 = x0 / 1.5, x1 * 1.5
        else:
            pad = (x1 - x0) * 0.08 or 1.0
            x0, x1 = x0 - pad, x1 + pad
        pad = (y1 - y0) * 0.08 or 0.5
        y0, y1 = y0 - pad, y1 + pad
        left, right, top, bottom = _MARGINS
        px = _Axes(ox, w, h, x0, x1, y0, y1, logx).px

        cv2.rectangle(canvas, (ox + left, top), (ox + w - right, h - bottom), (0, 0, 0), 1)
        for t in _ticks(x0, x1, logx):
            p = px(t, y0)
            cv2.line(canvas, (p[0], top), (p[0], h - bottom), (225, 225, 225), 1)
            cv2.putText(canvas, f"{t:g}", (p[0] - 12, h - bottom + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for t in _ticks(y0, y1, False):
            p = px(x0, t)
            cv2.line(canvas, (ox + left, p[1]), (ox + w - right, p[1]), (225, 225, 225), 1)
            cv2.putText(canvas, f"{t:g}", (ox + 8, p[1] + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, title, (ox + left, 22), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, xlabel, (ox + w // 2 - 60, h - 12), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, ylabel, (ox + 4, top - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for i, s in enumerate(series):
            color = COLORS[i % len(COLORS)][::-1]
            pts = [px(x, y) for x, y in zip(s.xs, s.ys, strict=True)]
            if s.line and len(pts) > 1:
                cv2.polylines(canvas, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
            markers = s.markers if s.markers is not None else not (s.line and len(pts) > 60)
            for j, p in enumerate(pts):
                if markers:
                    cv2.circle(canvas, p, 4, color, -1, cv2.LINE_AA)
                if j < len(s.point_labels) and s.point_labels[j]:
                    cv2.putText(canvas, s.point_labels[j], (p[0] + 6, p[1] - 6), font, 0.38, color, 1, cv2.LINE_AA)
            ly = top + 16 + 16 * i
            cv2.circle(canvas, (ox + left + 12, ly - 4), 4, color, -1, cv2.LINE_AA)
            cv2.putText(canvas, s.label, (ox + left + 22, ly), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError("cannot encode the plot")
    with atomic_output(Path(path)) as part:
        part.write_bytes(buf.tobytes())
