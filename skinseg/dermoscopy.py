"""The dermoscope's field of view: skin inside the lens's disc, none in its vignette.

A dermoscopy photo shows the skin through a round lens: inside the disc is
skin (healthy, or the lesion the photo is about), outside is a dark
vignette.  A dark lesion that runs into the vignette has the vignette's
colour, so no colour rule tells where one ends and the other begins; the
disc's shape does.  Along rays from the photo's centre, the disc's edge is
where a ray enters darkness for good (dark up to the photo's border); rays
through a lesion that touches the vignette enter it early, so the circle is
fitted robustly (RANSAC) and the photo counts as a dermoscopy photo only when
a circle explains most rays, covers most of the frame and leaves a dark
vignette outside it.  Then inside the disc, every non-skin region wider than
a hair is put back as skin (the lesion), and outside it nothing is skin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .cleanup import disk


@dataclass(frozen=True)
class FieldParams:
    """Chosen on PH2 (dermoscopy) against every other evaluation set, where no
    field of view may be found (none is, docs/quality.md)."""

    dark_ratio: float = 0.5         # dark: luminance below this share of the photo's 90th percentile
    rays: int = 180
    min_run: float = 0.02           # a ray's dark end must be this long (share of the short side)
    tolerance: float = 0.015        # a ray's edge is on the circle within this share of the short side
    min_edges: int = 12             # rays on the circle, at least
    min_inliers: float = 0.5        # ...and this share of the rays that end dark
    max_offset: float = 0.2         # the circle's centre this close to the photo's centre (share of each side)
    min_radius: float = 0.6         # the lens fills the frame: radius >= this share of the short side
    vignette: tuple[float, float] = (0.015, 0.25)     # share of the photo outside the disc
    vignette_dark: float = 0.8      # share of the outside that is dark
    margin: float = 0.01            # the disc is shrunk by this (the vignette's soft edge)
    hair_width: float = 0.01        # regions put back must be wider than a disk of this radius


_TRIALS = 300


def field_of_view(bgr: np.ndarray, p: FieldParams = FieldParams()) -> Optional[np.ndarray]:
    """0/255: the lens's disc of a dermoscopy photo (shrunk by the margin), or
    None when the photo is not one."""
    height, width = bgr.shape[:2]
    side = min(height, width)
    luma = cv2.GaussianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    dark = luma < p.dark_ratio * np.percentile(luma[::4, ::4], 90)
    corner = max(2, side // 40)
    corners = [dark[:corner, :corner], dark[:corner, -corner:], dark[-corner:, :corner], dark[-corner:, -corner:]]
    if not all(c.mean() > 0.5 for c in corners):
        return None                 # a centred lens's vignette darkens every corner: a cheap no
    edges = _ray_edges(dark, p.rays, max(3, int(p.min_run * side)))
    if len(edges) < p.min_edges:
        return None
    circle = _robust_circle(edges, width, height, p.tolerance * side, p)
    if circle is None:
        return None
    cx, cy, radius, inliers = circle
    if inliers < max(p.min_edges, p.min_inliers * len(edges)) or radius < p.min_radius * side:
        return None
    disc = np.zeros((height, width), np.uint8)
    cv2.circle(disc, (round(cx), round(cy)), round(radius), 255, -1)
    outside = disc == 0
    share = float(outside.mean())
    if not p.vignette[0] <= share <= p.vignette[1] or dark[outside].mean() < p.vignette_dark:
        return None
    cv2.circle(disc, (round(cx), round(cy)), round(radius), 0, max(1, round(2 * p.margin * side)))
    return disc


def within_field_of_view(mask: np.ndarray, bgr: np.ndarray, keep_out: Optional[np.ndarray] = None,
                         p: FieldParams = FieldParams()) -> np.ndarray:
    """mask (0/255) of a close-up with, when it is a dermoscopy photo, the
    non-skin regions inside the disc that are wider than a hair put back and
    everything outside the disc taken out; otherwise mask unchanged."""
    disc = field_of_view(bgr, p)
    if disc is None:
        return mask
    candidates = cv2.bitwise_and(disc, cv2.bitwise_not(mask))
    if keep_out is not None:
        candidates[keep_out > 0] = 0
    radius = max(1, int(p.hair_width * min(mask.shape)))
    lesions = cv2.morphologyEx(candidates, cv2.MORPH_OPEN, disk(radius))
    return cv2.bitwise_and(cv2.bitwise_or(mask, lesions), disc)


def _ray_edges(dark: np.ndarray, rays: int, min_run: int) -> np.ndarray:
    """(n, 2) points where rays from the centre enter darkness that lasts to
    the border (rays that end bright give none)."""
    height, width = dark.shape
    cx, cy = (width - 1) / 2, (height - 1) / 2
    angles = np.linspace(0, 2 * np.pi, rays, endpoint=False)
    steps = np.arange(int(np.hypot(cx, cy)) + 2)
    xs = cx + np.cos(angles)[:, None] * steps
    ys = cy + np.sin(angles)[:, None] * steps
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)      # a prefix of each ray
    samples = dark[np.clip(np.rint(ys), 0, height - 1).astype(int), np.clip(np.rint(xs), 0, width - 1).astype(int)]
    last = inside.sum(axis=1) - 1
    bright = ~samples & inside
    last_bright = np.where(bright.any(axis=1), steps[-1] - np.argmax(bright[:, ::-1], axis=1), -1)
    enter = last_bright + 1
    ok = (last >= 0) & samples[np.arange(rays), np.maximum(last, 0)] & (last + 1 - enter >= min_run)
    return np.column_stack([cx + np.cos(angles[ok]) * enter[ok], cy + np.sin(angles[ok]) * enter[ok]])


def _robust_circle(points: np.ndarray, width: int, height: int, tolerance: float,
                   p: FieldParams) -> Optional[tuple[float, float, float, int]]:
    """RANSAC over circles through 3 points (centre near the photo's, radius
    large enough), refitted on the inliers: (cx, cy, radius, inliers) or None."""
    rng = np.random.default_rng(0)                # the same photo, the same circle
    triples = np.array([rng.choice(len(points), 3, replace=False) for _ in range(_TRIALS)])
    (x1, y1), (x2, y2), (x3, y3) = (points[triples[:, k]].T for k in range(3))
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    s1, s2, s3 = x1 ** 2 + y1 ** 2, x2 ** 2 + y2 ** 2, x3 ** 2 + y3 ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d
        uy = (s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d
    radius = np.hypot(x1 - ux, y1 - uy)
    usable = (np.abs(d) > 1e-6) & (np.abs(ux / width - 0.5) < p.max_offset) & \
        (np.abs(uy / height - 0.5) < p.max_offset) & (radius >= p.min_radius * min(width, height))
    if not usable.any():
        return None
    ux, uy, radius = ux[usable], uy[usable], radius[usable]
    distance = np.hypot(points[None, :, 0] - ux[:, None], points[None, :, 1] - uy[:, None])
    best = int(np.argmax((np.abs(distance - radius[:, None]) < tolerance).sum(axis=1)))
    cx, cy, r = ux[best], uy[best], radius[best]
    for _ in range(2):                            # least squares on the inliers
        keep = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - r) < tolerance
        if keep.sum() < 3:
            return None
        cx, cy, r = _circle_fit(points[keep])
    keep = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - r) < tolerance
    if abs(cx / width - 0.5) >= p.max_offset or abs(cy / height - 0.5) >= p.max_offset:
        return None
    return float(cx), float(cy), float(r), int(keep.sum())


def _circle_fit(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle (Kasa): x^2 + y^2 = a x + b y + c."""
    x, y = points[:, 0], points[:, 1]
    (a, b, c), *_ = np.linalg.lstsq(np.column_stack([x, y, np.ones_like(x)]), x * x + y * y, rcond=None)
    cx, cy = a / 2, b / 2
    return cx, cy, float(np.sqrt(max(c + cx * cx + cy * cy, 0.0)))
