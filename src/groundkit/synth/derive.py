"""Supervision derived from a mask: tight box, an interior point, a polygon outline.

The interior point is the pole of inaccessibility on the pixel grid: the mask pixel
farthest from the background (Euclidean distance transform, image border counts as
background), so it lies inside the mask even where the centroid does not (rings, C shapes).
The polygon traces the outer boundary of the largest 8-connected component along pixel
edges and simplifies it (Douglas-Peucker) to at most ``max_vertices`` vertices.
"""

from __future__ import annotations

import numpy as np

from groundkit.errors import DataError
from groundkit.geometry import Box

# Walking along pixel edges: directions E, S, W, N (y grows downwards); "right" = clockwise.
_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))
# For a corner (cx, cy) and a direction, the offsets of the pixel ahead-left and ahead-right.
_AHEAD = {
    (1, 0): ((0, -1), (0, 0)),
    (0, 1): ((0, 0), (-1, 0)),
    (-1, 0): ((-1, 0), (-1, -1)),
    (0, -1): ((-1, -1), (0, -1)),
}


def _check(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2 or not m.any():
        raise DataError("empty mask: nothing to derive a box, point or polygon from")
    return m


def mask_box(mask: np.ndarray) -> Box:
    """The tight unit-frame box of a mask (pixel edges: x2, y2 are one past the last pixel)."""
    m = _check(mask)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    h, w = m.shape
    return (float(cols[0] / w), float(rows[0] / h), float((cols[-1] + 1) / w), float((rows[-1] + 1) / h))


def mask_interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The unit-frame centre of the pixel farthest from the background (always inside the mask)."""
    m = _check(mask)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, x0 = rows[0], cols[0]
    from scipy import ndimage  # imported on use: keeps `import groundkit` light

    crop = m[y0 : rows[-1] + 1, x0 : cols[-1] + 1]
    dist = ndimage.distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1]
    # ties: the candidate nearest the centroid of the tied set keeps points stable and central
    best = dist.max()
    ys, xs = np.nonzero(dist >= best - 1e-9)
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    h, w = m.shape
    return (float((xs[k] + x0 + 0.5) / w), float((ys[k] + y0 + 0.5) / h))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a mask."""
    from scipy import ndimage

    m = _check(mask)
    labels, n = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return m
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def trace_outline(component: np.ndarray) -> list[tuple[int, int]]:
    """Corner coordinates (pixel units) of the outer boundary of one 8-connected component,
    clockwise on screen, one vertex per change of direction."""
    m = np.pad(_check(component), 1)  # padded: the walk never leaves the array
    ys, xs = np.nonzero(m)
    start = (int(xs[0]), int(ys[0]))  # first pixel in raster order: its top edge is boundary
    corner, d = start, 0
    out: list[tuple[int, int]] = []
    moved = False
    for _ in range(4 * m.size + 8):
        if moved and corner == start and d == 0:
            break
        dx, dy = _DIRS[d]
        (lx, ly), (rx, ry) = _AHEAD[(dx, dy)]
        cx, cy = corner
        left, right = m[cy + ly, cx + lx], m[cy + ry, cx + rx]
        turn = -1 if left else (0 if right else 1)  # 8-connectivity: a diagonal joins
        if turn:
            d = (d + turn) % 4
            out.append((cx - 1, cy - 1))
            continue
        corner, moved = (cx + dx, cy + dy), True
    else:  # pragma: no cover - the walk is bounded by the number of edges
        raise DataError("mask outline did not close")
    return _dedupe(out)


def _dedupe(pts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in pts:
        if not out or out[-1] != p:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _dp(pts: np.ndarray, tol: float) -> list[int]:
    """Douglas-Peucker on an open chain: indices kept (iterative, no recursion limit)."""
    keep = {0, len(pts) - 1}
    stack = [(0, len(pts) - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        a, b = pts[i], pts[j]
        seg = b - a
        norm = float(np.hypot(*seg))
        rel = pts[i + 1 : j] - a
        dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm if norm > 0 else np.hypot(rel[:, 0], rel[:, 1])
        k = int(np.argmax(dist))
        if dist[k] > tol:
            keep.add(i + 1 + k)
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return sorted(keep)


def simplify(pts: list[tuple[int, int]], max_vertices: int) -> list[tuple[float, float]]:
    """Fewest-tolerance Douglas-Peucker simplification with at most ``max_vertices`` vertices."""
    if len(pts) <= max_vertices:
        return [(float(x), float(y)) for x, y in pts]
    arr = np.asarray(pts, dtype=float)
    # split the closed ring at the vertex farthest from the first one
    far = int(np.argmax(np.hypot(*(arr - arr[0]).T)))
    chain1, chain2 = arr[: far + 1], np.vstack([arr[far:], arr[:1]])
    tol = 0.5
    while True:
        k1, k2 = _dp(chain1, tol), _dp(chain2, tol)
        idx = k1 + [far + k for k in k2[1:-1]]
        if len(idx) <= max_vertices or tol > float(np.ptp(arr, axis=0).max()):
            return [(float(arr[i, 0]), float(arr[i, 1])) for i in sorted(set(idx))]
        tol *= 1.5


def mask_polygon(mask: np.ndarray, max_vertices: int = 16) -> tuple[float, ...]:
    """A flat unit-frame polygon (x, y, x, y, ...) outlining the largest component of a mask
    (>= 3 vertices, at most ``max_vertices``; holes are not represented)."""
    if max_vertices < 3:
        raise DataError(f"a polygon needs at least 3 vertices, max_vertices={max_vertices}")
    comp = largest_component(mask)
    pts = simplify(trace_outline(comp), max_vertices)
    if len(pts) < 3:  # degenerate outline: fall back to the component's box corners
        x1, y1, x2, y2 = mask_box(comp)
        return (x1, y1, x2, y1, x2, y2, x1, y2)
    h, w = comp.shape
    return tuple(v for x, y in pts for v in (x / w, y / h))
