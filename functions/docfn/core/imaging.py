"""The image operations docfn's pipelines need, on numpy and Pillow alone (no OpenCV at run time).

Each function replaces one OpenCV call (or a small group of them) that the OCR, layout, table and
parse code used; the docstrings name the call. They are not bit-for-bit copies of OpenCV: where
exactness is cheap it is kept (adaptive threshold, line opening, components, NMS, hulls), elsewhere
results agree to within a grey level or two (resampling, grey conversion) or an edge pixel
(polygon fill), and ``find_region_hulls`` returns only what DB post-processing reads from
``findContours``: each region's convex hull (hole contours are not returned).
docs/benchmarks/imaging.md measures the pipelines both ways on the devset.

Conventions: images are ``uint8`` arrays ``(H, W)`` or ``(H, W, C)``; points are ``(x, y)`` in pixel
coordinates where pixel ``(i, j)`` has its centre at ``x = j, y = i`` (OpenCV's convention).
Binary masks are any array whose non-zero pixels are foreground.

Connected regions are found on run-length encoded rows: every horizontal run of foreground pixels
is a node, runs on neighbouring rows that touch are joined by union-find (vectorised hooking and
pointer jumping), so the cost follows the number of runs (a few thousand on a page), not pixels.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import sys
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image, ImageDraw

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
RotatedRect = tuple[tuple[float, float], tuple[float, float], float]
"""``((centre_x, centre_y), (width, height), angle_degrees)``, OpenCV's ``RotatedRect`` tuple."""

__all__ = [
    "RotatedRect",
    "Runs",
    "adaptive_threshold_mean",
    "arc_length",
    "bgr_to_gray",
    "bgr_to_rgb",
    "box_points",
    "connected_components_with_stats",
    "contour_area",
    "convex_hull",
    "dilate3x3",
    "encode_png",
    "fill_polygon",
    "find_region_hulls",
    "label_runs",
    "masked_mean",
    "min_area_rect",
    "nms_per_class",
    "open_lines",
    "perspective_crop",
    "perspective_transform",
    "polygon_mean",
    "resize_bilinear",
    "rgb_to_bgr",
    "rgb_to_gray",
    "rotate180",
    "run_lengths",
    "warp_perspective",
]


def _pixels(image: Image.Image) -> U8:
    """A writable array of a Pillow image (``np.asarray`` gives a read-only view; OpenCV's results
    are writable and callers may draw on them)."""
    return np.array(image)


# --------------------------------------------------------------------------------------------------
# Colour


def rgb_to_bgr(image: U8) -> U8:
    """Swap the first and third channels into a new contiguous array.

    Replaces ``cv2.cvtColor(image, cv2.COLOR_RGB2BGR)`` (and ``COLOR_BGR2RGB``: the same swap).
    Three plane copies: several times faster in numpy than ``image[..., ::-1].copy()``.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    out = np.empty_like(image)
    out[..., 0] = image[..., 2]
    out[..., 1] = image[..., 1]
    out[..., 2] = image[..., 0]
    if image.shape[2] > 3:
        out[..., 3:] = image[..., 3:]
    return out


bgr_to_rgb = rgb_to_bgr


def rgb_to_gray(image: U8) -> U8:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` rounded, as uint8 ``(H, W)``.

    Replaces ``cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)``. Pillow's ``convert("L")``: 16-bit
    fixed-point weights where OpenCV uses 14-bit, so a pixel can differ by one grey level (none did
    on the devset pages); about 5x faster than the same sum in numpy.
    """
    if image.ndim == 2:
        return image.copy()
    return _pixels(Image.fromarray(np.ascontiguousarray(image[..., :3])).convert("L"))


def bgr_to_gray(image: U8) -> U8:
    """Replaces ``cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)`` (see :func:`rgb_to_gray`)."""
    if image.ndim == 2:
        return image.copy()
    return rgb_to_gray(rgb_to_bgr(image[..., :3]))


# --------------------------------------------------------------------------------------------------
# Resampling


class _Taps(NamedTuple):
    """One axis of a linear resize: source pixel of both taps and the second tap's 8-bit weight
    (0..256), half-pixel centres clamped to the border (OpenCV's INTER_LINEAR geometry)."""

    first: NDArray[np.intp]
    second: NDArray[np.intp]
    weight: NDArray[np.uint16]
    # Near-identity scales (a page rounded to a multiple of 32): (out_start, out_end, src_start) of
    # stretches where the source advances in step with the output, copied as slices, not gathered.
    slices: tuple[tuple[int, int, int], ...] | None


@functools.lru_cache(maxsize=1024)
def _linear_taps(n_in: int, n_out: int) -> _Taps:
    position = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    first = np.floor(position).astype(np.intp)
    frac = position - first
    low = first < 0
    first[low], frac[low] = 0, 0.0
    high = first >= n_in - 1
    first[high], frac[high] = n_in - 1, 0.0
    second = np.minimum(first + 1, n_in - 1)
    weight = np.rint(frac * 256).astype(np.uint16)
    slices = None
    if abs(n_out - n_in) * 16 <= n_out:  # the first tap falls behind once per |n_out - n_in| pixels
        breaks = np.flatnonzero(np.diff(first - np.arange(n_out))) + 1
        if len(breaks) * 16 <= n_out:  # stretches of 16+ pixels on average
            bounds = [0, *breaks.tolist(), n_out]
            slices = tuple((a, b, int(first[a])) for a, b in itertools.pairwise(bounds))
    for array in (first, second, weight):
        array.flags.writeable = False  # cached: shared by every caller
    return _Taps(first, second, weight, slices)


_LITTLE_ENDIAN = sys.byteorder == "little"


def _lerp(a: U8, b: U8, weight_a: NDArray[np.uint16], weight_b: NDArray[np.uint16]) -> U8:
    """``(a * wa + b * wb + 128) >> 8`` with ``wa + wb = 256``, in uint16 (at most 65408: no overflow).

    The shift is a view of each uint16's high byte (no pass over the data); the result may be strided.
    """
    acc = np.multiply(a, weight_a, dtype=np.uint16)
    acc += np.multiply(b, weight_b, dtype=np.uint16)
    acc += 128
    if _LITTLE_ENDIAN:
        return acc.view(np.uint8)[..., 1::2]
    acc >>= 8
    return acc.astype(np.uint8)


def _sliced_columns(rows: U8, taps: _Taps, channels: int, second: bool) -> U8:
    """``rows[:, tap]`` (flat ``(n, W*C)`` rows) copied stretch by stretch as slices; past the last
    source pixel (the second tap clamps there) the last pixel repeats."""
    assert taps.slices is not None
    out = np.empty((rows.shape[0], len(taps.first) * channels), dtype=np.uint8)
    last = rows.shape[1] // channels
    for a, b, src in taps.slices:
        start = src + int(second)
        fits = min(b - a, last - start)
        out[:, a * channels : (a + fits) * channels] = rows[:, start * channels : (start + fits) * channels]
        if fits < b - a:
            tail = out[:, (a + fits) * channels : b * channels].reshape(rows.shape[0], -1, channels)
            tail[...] = rows[:, (last - 1) * channels :].reshape(rows.shape[0], 1, channels)
    return out


def _column_weights(taps: _Taps, channels: int) -> NDArray[np.uint16]:
    """Each output byte's weight of its second tap, in flat ``(W*C)`` order."""
    return np.repeat(taps.weight, channels) if channels > 1 else taps.weight


def _column_bytes(taps: _Taps, channels: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The flat byte indices of each output column's two taps, every channel: byte gathers on flat
    indices are faster than pixel fancy-indexing or packing to words."""
    lane = np.arange(channels, dtype=np.intp)
    first, second = ((tap[:, None] * channels + lane).reshape(-1) for tap in (taps.first, taps.second))
    return first, second


def _horizontal(rows: U8, taps: _Taps, channels: int) -> U8:
    """Resample contiguous flat rows ``(n, W*C)`` along x; the result may be a strided view."""
    weight = _column_weights(taps, channels)
    if taps.slices is not None:
        left = _sliced_columns(rows, taps, channels, False)
        right = _sliced_columns(rows, taps, channels, True)
    else:
        first, second = _column_bytes(taps, channels)
        left, right = np.take(rows, first, axis=1), np.take(rows, second, axis=1)
    return _lerp(left, right, 256 - weight, weight)


def _resize_rows(
    flat: U8, rows: slice, vertical: _Taps | None, horizontal: _Taps | None, channels: int
) -> U8:
    """Output rows ``rows`` of a resize of ``flat`` (a contiguous ``(H, W*C)`` array).

    Gathering columns is the costly step, so it runs on whichever has fewer rows, the source or
    the output, and always on contiguous rows.
    """
    if vertical is None:
        return _horizontal(flat[rows], horizontal, channels) if horizontal else flat[rows]
    top, bottom, weight = vertical.first[rows], vertical.second[rows], vertical.weight[rows][:, None]
    if horizontal is None:
        return _lerp(flat[top], flat[bottom], 256 - weight, weight)
    lo, hi = int(top[0]), int(bottom[-1]) + 1  # the source rows this band reads
    if hi - lo < len(top):  # enlarging: columns first, on the fewer source rows
        source = np.ascontiguousarray(_horizontal(flat[lo:hi], horizontal, channels))
        return _lerp(source[top - lo], source[bottom - lo], 256 - weight, weight)
    if _LITTLE_ENDIAN and horizontal.slices is None:
        # Columns gathered straight from the high bytes of the vertical pass's uint16 sums (what
        # _lerp's result views) at doubled indices: the same bytes without copying the band
        # contiguous first (a layout page, 1651x1275 -> 800x608: 5.4 -> 4.5 ms). _lerp's sums written
        # out here: each gathered band of rows is dropped as soon as it is summed (passed to a
        # function, both bands live at once and the resize took twice as long).
        sums = np.multiply(flat[top], 256 - weight, dtype=np.uint16)
        sums += np.multiply(flat[bottom], weight, dtype=np.uint16)
        sums += 128
        high = sums.view(np.uint8)
        first, second = _column_bytes(horizontal, channels)
        left, right = np.take(high, first * 2 + 1, axis=1), np.take(high, second * 2 + 1, axis=1)
        column_weight = _column_weights(horizontal, channels)
        return _lerp(left, right, 256 - column_weight, column_weight)
    band = np.ascontiguousarray(_lerp(flat[top], flat[bottom], 256 - weight, weight))
    return _horizontal(band, horizontal, channels)


def resize_bilinear(image: U8, width: int, height: int, *, antialias: bool = False) -> U8:
    """Resize a uint8 image (``(H, W)`` or ``(H, W, C)``) to ``width`` x ``height``.

    ``antialias=False`` replaces ``cv2.resize(image, (width, height))`` (``INTER_LINEAR``, the
    default): two-tap linear interpolation at half-pixel centres, clamped at the border, separable;
    within two grey levels of OpenCV (8-bit weights instead of 11, rounded after each pass). It
    samples, it does not average: shrinking by more than 2x aliases, as OpenCV does. Large images
    are done in bands of rows that stay in the CPU cache (about 2x faster than whole passes).

    ``antialias=True`` uses Pillow's ``BILINEAR`` resize, which widens the filter when shrinking
    (an area-weighted triangle filter): the same as the above when enlarging, smoother when
    shrinking.
    """
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise TypeError(f"expected a uint8 (H, W) or (H, W, C) image, got {image.dtype} {image.shape}")
    if antialias:
        resized = Image.fromarray(np.ascontiguousarray(image)).resize(
            (width, height), Image.Resampling.BILINEAR, reducing_gap=None
        )
        return _pixels(resized)
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image.copy()
    channels = 1 if image.ndim == 2 else image.shape[2]
    flat = np.ascontiguousarray(image).reshape(src_h, src_w * channels)
    vertical = _linear_taps(src_h, height) if height != src_h else None
    horizontal = _linear_taps(src_w, width) if width != src_w else None
    band = max(16, _BAND_BYTES // (2 * channels * max(src_w, width)))
    if band >= height:
        out = np.ascontiguousarray(_resize_rows(flat, slice(0, height), vertical, horizontal, channels))
    else:
        out = np.empty((height, width * channels), dtype=np.uint8)
        for y in range(0, height, band):
            out[y : y + band] = _resize_rows(flat, slice(y, y + band), vertical, horizontal, channels)
    return out.reshape((height, width, *image.shape[2:]))


_BAND_BYTES = 1 << 20  # uint16 intermediates of one band of rows: about 1 MB


def rotate180(image: U8) -> U8:
    """Replaces ``cv2.rotate(image, cv2.ROTATE_180)``: a contiguous copy turned upside down."""
    return np.ascontiguousarray(image[::-1, ::-1])


Matrix3 = list[list[float]]


def _square_to_quad(quad: list[tuple[float, float]]) -> Matrix3:
    """Homography from the unit square's corners (0,0), (1,0), (1,1), (0,1) to ``quad`` (Heckbert)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    if sx == 0 and sy == 0:  # a parallelogram: affine
        return [[x1 - x0, x3 - x0, x0], [y1 - y0, y3 - y0, y0], [0.0, 0.0, 1.0]]
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    if den == 0:
        raise np.linalg.LinAlgError("degenerate quadrilateral: three corners on a line")
    g, h = (sx * dy2 - dx2 * sy) / den, (dx1 * sy - sx * dy1) / den
    return [[x1 - x0 + g * x1, x3 - x0 + h * x3, x0], [y1 - y0 + g * y1, y3 - y0 + h * y3, y0], [g, h, 1.0]]


def _inverse3(m: Matrix3) -> Matrix3:
    (a, b, c), (d, e, f), (g, h, i) = m
    co = [e * i - f * h, f * g - d * i, d * h - e * g]
    det = a * co[0] + b * co[1] + c * co[2]
    if det == 0:
        raise np.linalg.LinAlgError("singular homography")
    return [
        [co[0] / det, (c * h - b * i) / det, (b * f - c * e) / det],
        [co[1] / det, (a * i - c * g) / det, (c * d - a * f) / det],
        [co[2] / det, (b * g - a * h) / det, (a * e - b * d) / det],
    ]


def _product3(m: Matrix3, n: Matrix3) -> Matrix3:
    return [[sum(m[r][k] * n[k][c] for k in range(3)) for c in range(3)] for r in range(3)]


def _normalised(m: Matrix3) -> Matrix3:
    scale = m[2][2]
    return [[v / scale for v in row] for row in m]


def perspective_transform(src: ArrayLike, dst: ArrayLike) -> NDArray[np.float64]:
    """The 3x3 homography taking the four ``src`` points to the four ``dst`` points (float64).

    Replaces ``cv2.getPerspectiveTransform(src, dst)``: the same matrix, composed in closed form
    (square to ``dst`` after ``src`` to square) in plain floats, ten times cheaper than a numpy solve.
    """
    s, d = _point_list(src), _point_list(dst)
    if len(s) != 4 or len(d) != 4:
        raise ValueError("perspective_transform needs four source and four destination points")
    return np.array(_normalised(_product3(_square_to_quad(d), _inverse3(_square_to_quad(s)))))


def warp_perspective(
    image: U8,
    matrix: ArrayLike,
    size: tuple[int, int],
    *,
    resample: Literal["bilinear", "bicubic"] = "bilinear",
) -> U8:
    """The ``size = (width, height)`` image whose pixel ``p`` is ``image`` at ``matrix^-1 p``.

    Replaces ``cv2.warpPerspective(image, matrix, size, borderMode=cv2.BORDER_REPLICATE)`` with
    ``flags=cv2.INTER_LINEAR`` (within one grey level, tested) or ``INTER_CUBIC``
    (``resample="bicubic"``: Pillow's kernel has a = -0.5 where OpenCV's has -0.75, so edges are a
    little softer).

    An integer translation (an upright box with integer corners, the usual text line) is a plain
    slice: exactly what any interpolation returns there. Anything else goes through Pillow's
    ``Image.transform(PERSPECTIVE)`` on just the neighbourhood the output reaches, padded by edge
    replication.
    """
    width, height = size
    inverse = _normalised(_inverse3(np.asarray(matrix, dtype=np.float64).reshape(3, 3).tolist()))
    img_h, img_w = image.shape[:2]
    (a, b, tx), (c, d, ty), (g, h, _) = inverse
    x0, y0 = round(tx), round(ty)
    exact = max(abs(a - 1), abs(b), abs(c), abs(d - 1), abs(g), abs(h), abs(tx - x0), abs(ty - y0)) < 1e-6
    if exact and x0 >= 0 and y0 >= 0 and x0 + width <= img_w and y0 + height <= img_h:
        return image[y0 : y0 + height, x0 : x0 + width].copy()
    # Where the output's corners come from, plus the cubic kernel's reach (2 px) and a pixel spare.
    xs, ys = [], []
    for u, v in ((0, 0), (width, 0), (width, height), (0, height)):
        w = g * u + h * v + 1.0
        xs.append((a * u + b * v + tx) / w)
        ys.append((c * u + d * v + ty) / w)
    margin = 3
    left, top = math.floor(min(xs)) - margin, math.floor(min(ys)) - margin
    right, bottom = math.ceil(max(xs)) + margin + 1, math.ceil(max(ys)) + margin + 1
    if left >= 0 and top >= 0 and right <= img_w and bottom <= img_h:
        patch = image[top:bottom, left:right]
    else:  # BORDER_REPLICATE: clamp the indices
        rows = np.clip(np.arange(top, bottom), 0, img_h - 1)
        cols = np.clip(np.arange(left, right), 0, img_w - 1)
        patch = image[rows[:, None], cols[None, :]]
    # Pillow samples output pixel (x, y) at T(x + 0.5, y + 0.5) in pixel-corner coordinates; OpenCV
    # maps pixel centres. T = shift(+0.5) . inverse . shift(-0.5), moved into the patch's frame.
    to_corner = [[1.0, 0.0, 0.5 - left], [0.0, 1.0, 0.5 - top], [0.0, 0.0, 1.0]]
    from_corner = [[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]]
    mapping = _normalised(_product3(_product3(to_corner, inverse), from_corner))
    method = Image.Resampling.BICUBIC if resample == "bicubic" else Image.Resampling.BILINEAR
    warped = Image.fromarray(np.ascontiguousarray(patch)).transform(
        (width, height),
        Image.Transform.PERSPECTIVE,
        tuple(mapping[0] + mapping[1] + mapping[2][:2]),
        resample=method,
    )
    return _pixels(warped)


def perspective_crop(
    image: U8,
    quad: ArrayLike,
    size: tuple[int, int],
    *,
    resample: Literal["bilinear", "bicubic"] = "bilinear",
) -> U8:
    """Warp the quadrilateral ``quad`` (top-left, top-right, bottom-right, bottom-left) to an
    upright ``size = (width, height)`` image, its corners on the output's outer corners.

    Replaces ``cv2.warpPerspective(image, cv2.getPerspectiveTransform(quad, [[0, 0], [w, 0],
    [w, h], [0, h]]), (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)``. Bilinear by
    default: on the devset it read text exactly as well as bicubic (OCR CER equal) and Pillow's
    bicubic costs 2.5x as much (docs/benchmarks/imaging.md).
    """
    width, height = size
    target = [[0, 0], [width, 0], [width, height], [0, height]]
    return warp_perspective(image, perspective_transform(quad, target), size, resample=resample)


# --------------------------------------------------------------------------------------------------
# Runs and connected regions


class Runs(NamedTuple):
    """Horizontal runs of foreground pixels in raster order: ``row``, ``start``, ``end`` (exclusive)."""

    row: NDArray[np.intp]
    start: NDArray[np.intp]
    end: NDArray[np.intp]


def run_lengths(mask: NDArray[np.generic]) -> Runs:
    """Run-length encode the rows of a binary mask (non-zero = foreground)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=bool)  # blank columns close every row's runs
    np.not_equal(mask, 0, out=padded[:, 1:-1])
    edges = np.flatnonzero(padded[:, 1:] != padded[:, :-1])  # starts and ends alternate
    stride = width + 1
    starts, ends = edges[0::2], edges[1::2]
    row = starts // stride
    return Runs(row, starts - row * stride, ends - row * stride)


def _touching_pairs(runs: Runs, width: int, connectivity: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Index pairs (a, b): run a on the row above run b, touching it (4- or 8-connected)."""
    stride = width + 2
    start_key = runs.row * stride + runs.start
    end_key = runs.row * stride + runs.end
    above = (runs.row - 1) * stride
    reach = 0 if connectivity == 8 else 1
    # Runs of one row are disjoint and sorted, so the runs above that touch b form an index range.
    first = np.searchsorted(end_key, above + runs.start + reach, side="left")
    last = np.searchsorted(start_key, above + runs.end - reach, side="right")
    count = np.maximum(last - first, 0)
    total = int(count.sum())
    b = np.repeat(np.arange(len(count), dtype=np.intp), count)
    offsets = np.arange(total, dtype=np.intp) - np.repeat(np.cumsum(count) - count, count)
    a = np.repeat(first, count) + offsets
    return a, b


def label_runs(runs: Runs, width: int, connectivity: Literal[4, 8] = 8) -> tuple[NDArray[np.intp], int]:
    """Region label of every run (0..n-1, numbered in raster order of each region's first pixel)."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    n = len(runs.row)
    parent = np.arange(n, dtype=np.intp)
    a, b = _touching_pairs(runs, width, connectivity)
    while a.size:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            break
        a, b, root_a, root_b = a[differ], b[differ], root_a[differ], root_b[differ]
        # Hook the larger root under the smaller, then jump pointers until every run sees its root.
        np.minimum.at(parent, np.maximum(root_a, root_b), np.minimum(root_a, root_b))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    roots, labels = np.unique(parent, return_inverse=True)  # a root is its region's first run
    return labels.astype(np.intp), len(roots)


def connected_components_with_stats(
    mask: NDArray[np.generic], connectivity: Literal[4, 8] = 8
) -> tuple[int, NDArray[np.int32], NDArray[np.int32], NDArray[np.float64]]:
    """Label the foreground regions of a binary mask.

    Replaces ``cv2.connectedComponentsWithStats(mask, connectivity=...)`` and returns the same
    ``(count, labels, stats, centroids)``: label 0 is the background, regions are numbered in raster
    order of their first pixel, ``stats`` rows are ``x, y, width, height, area`` (int32).
    """
    height, width = mask.shape
    runs = run_lengths(mask)
    labels_image = np.zeros((height, width), dtype=np.int32)
    if not len(runs.row):
        stats = np.array([[0, 0, width, height, width * height]], dtype=np.int32)
        return 1, labels_image, stats, np.array([[(width - 1) / 2, (height - 1) / 2]])
    labels, count = label_runs(runs, width, connectivity)
    length = runs.end - runs.start
    area = np.bincount(labels, weights=length, minlength=count)
    sum_x = np.bincount(labels, weights=length * (runs.start + runs.end - 1) / 2, minlength=count)
    sum_y = np.bincount(labels, weights=length * runs.row, minlength=count)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order], prepend=-1))
    x0 = np.minimum.reduceat(runs.start[order], bounds)
    x1 = np.maximum.reduceat(runs.end[order], bounds)
    y0 = np.minimum.reduceat(runs.row[order], bounds)
    y1 = np.maximum.reduceat(runs.row[order], bounds) + 1
    # The background's box and centroid: whatever the foreground leaves.
    background = mask == 0
    bg_area = int(background.sum())
    stats = np.zeros((count + 1, 5), dtype=np.int32)
    centroids = np.zeros((count + 1, 2), dtype=np.float64)
    if bg_area:
        cols = np.flatnonzero(background.any(axis=0))
        rows = np.flatnonzero(background.any(axis=1))
        stats[0] = (cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1, bg_area)
        all_x = height * width * (width - 1) / 2
        all_y = width * height * (height - 1) / 2
        centroids[0] = ((all_x - sum_x.sum()) / bg_area, (all_y - sum_y.sum()) / bg_area)
    stats[1:] = np.stack([x0, y0, x1 - x0, y1 - y0, area.astype(np.int64)], axis=1)
    centroids[1:, 0] = sum_x / area
    centroids[1:, 1] = sum_y / area
    # Paint every run's pixels with its label.
    flat_start = runs.row * width + runs.start
    pixels = np.repeat(flat_start - (np.cumsum(length) - length), length) + np.arange(int(length.sum()))
    labels_image.reshape(-1)[pixels] = np.repeat(labels + 1, length)
    return count + 1, labels_image, stats, centroids


def find_region_hulls(mask: NDArray[np.generic], connectivity: Literal[4, 8] = 8) -> list[NDArray[np.int32]]:
    """The convex hull of every foreground region, as ``(N, 1, 2)`` int32 point arrays (OpenCV's
    contour layout), listed as OpenCV lists contours: the region found last (raster order of first
    pixels) first.

    Replaces ``cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)`` where the contours
    only feed ``minAreaRect`` (DB text detection): an outer contour and its region have the same
    hull, so the rectangle is the same (tested: identical hull points). Hole contours are not
    returned (on the devset no hole contour ever passed DB's score filter); regions inside holes
    are. The hulls pass through pixel centres and exclude collinear points.
    """
    height, width = mask.shape
    runs = run_lengths(mask)
    if not len(runs.row):
        return []
    labels, _count = label_runs(runs, width, connectivity)
    # Per (region, row): leftmost and rightmost pixel. Regions' rows are contiguous.
    order = np.argsort(labels, kind="stable")  # runs stay in raster order within a region
    lab, row = labels[order], runs.row[order]
    key = lab * height + row
    first = np.flatnonzero(np.diff(key, prepend=-1))
    left = np.minimum.reduceat(runs.start[order], first)
    right = np.maximum.reduceat(runs.end[order], first) - 1
    lab, row = lab[first], row[first]
    # Only staircase corners can be hull vertices: a left end is interior when rows both above and
    # below reach further left (and likewise on the right). Segmented running minima via offsets.
    big = width + 2
    left_keep = _record(left, lab, big) | _record(left[::-1], lab[::-1], big, reverse=True)[::-1]
    right_keep = _record(-right, lab, big) | _record(-right[::-1], lab[::-1], big, reverse=True)[::-1]
    xs = np.concatenate([left[left_keep], right[right_keep]])
    ys = np.concatenate([row[left_keep], row[right_keep]])
    owner = np.concatenate([lab[left_keep], lab[right_keep]])
    order = np.lexsort((ys, xs, owner))  # by region, then x, then y: monotone chain's order
    xs, ys, owner = xs[order].tolist(), ys[order].tolist(), owner[order]
    cuts = np.flatnonzero(np.diff(owner)) + 1
    hulls = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(xs)], strict=True):
        hull = _monotone_chain(list(zip(xs[lo:hi], ys[lo:hi], strict=True)))
        hulls.append(np.array(hull, dtype=np.int32).reshape(-1, 1, 2))
    return hulls[::-1]


def _record(values: NDArray[np.intp], segment: NDArray[np.intp], big: int, reverse: bool = False) -> NDArray:
    """True where ``values`` sets a new strict minimum within its segment (and at segment starts)."""
    offset = segment.astype(np.int64) * big
    shifted = values + offset if reverse else values - offset  # later segments start lower
    running = np.minimum.accumulate(shifted)
    new = np.empty(len(values), dtype=bool)
    new[0] = True
    new[1:] = (shifted[1:] < running[:-1]) | (segment[1:] != segment[:-1])
    return new


# --------------------------------------------------------------------------------------------------
# Polygons


def _monotone_chain(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain on points sorted by (x, y); counter-clockwise in image axes
    (y down), without collinear points. Fewer than three distinct points come back as they are."""
    unique = list(dict.fromkeys(points))
    if len(unique) < 3:
        return unique
    chains = []
    for sequence in (unique, unique[::-1]):
        chain: list[tuple[float, float]] = []
        for p in sequence:
            while len(chain) >= 2:
                (ox, oy), (ax, ay) = chain[-2], chain[-1]
                if (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) > 0:
                    break
                chain.pop()
            chain.append(p)
        chains.append(chain[:-1])
    return chains[0] + chains[1]


def convex_hull(points: ArrayLike) -> NDArray[np.float64]:
    """Convex hull vertices ``(M, 2)`` of any ``(N, 2)`` / ``(N, 1, 2)`` points (monotone chain),
    counter-clockwise in image axes, without collinear points."""
    hull = _monotone_chain(sorted(_point_list(points)))
    return np.array(hull, dtype=np.float64).reshape(-1, 2)


def _calipers(hull: list[tuple[float, float]]) -> tuple[float, float, float, float, float, float]:
    """Rotating calipers over a counter-clockwise hull of 3+ vertices: for each edge, the extent
    along it and away from it, found by three pointers that only move forward (O(m) in all).
    Returns ``(w, h, ux, uy, cx, cy)`` of the smallest-area rectangle flush with an edge."""
    m = len(hull)
    xs = [p[0] for p in hull] * 2  # doubled: pointers run past the end without modulo
    ys = [p[1] for p in hull] * 2
    best = (0.0, 0.0, 1.0, 0.0, xs[0], ys[0])
    best_area = math.inf
    k = j = far = 1
    for i in range(m):
        x0, y0 = xs[i], ys[i]
        ex, ey = xs[i + 1] - x0, ys[i + 1] - y0
        length = math.hypot(ex, ey)
        ux, uy = ex / length, ey / length
        k = max(k, i + 1)  # farthest along the edge
        while k < i + m - 1 and (xs[k + 1] - xs[k]) * ux + (ys[k + 1] - ys[k]) * uy >= 0:
            k += 1
        j = max(j, k)  # farthest from the edge, along the inward normal (-uy, ux)
        while j < i + m - 1 and (ys[j + 1] - ys[j]) * ux - (xs[j + 1] - xs[j]) * uy >= 0:
            j += 1
        far = max(far, j)  # farthest back along the edge
        while far < i + m - 1 and (xs[far + 1] - xs[far]) * ux + (ys[far + 1] - ys[far]) * uy <= 0:
            far += 1
        hi = (xs[k] - x0) * ux + (ys[k] - y0) * uy
        lo = min(0.0, (xs[far] - x0) * ux + (ys[far] - y0) * uy)
        h = (ys[j] - y0) * ux - (xs[j] - x0) * uy
        area = (hi - lo) * h
        if area < best_area:
            best_area = area
            mid_u, mid_n = (hi + lo) / 2, h / 2
            best = (hi - lo, h, ux, uy, x0 + ux * mid_u - uy * mid_n, y0 + uy * mid_u + ux * mid_n)
    return best


def min_area_rect(points: ArrayLike) -> RotatedRect:
    """The smallest-area rectangle enclosing the points: ``((cx, cy), (w, h), angle)``.

    Replaces ``cv2.minAreaRect(points)``: convex hull (monotone chain), then rotating calipers (the
    optimal rectangle has a side along a hull edge), in plain floats: the hulls here have tens of
    vertices, where numpy's per-call cost would dominate. The angle is the direction of the ``w``
    side in degrees, in [0, 90) (OpenCV >= 4.5 reports (0, 90] and may swap ``w`` and ``h``);
    :func:`box_points` reads it back consistently. When orientations tie on area (a triangle has
    three), either may be returned.
    """
    hull = _monotone_chain(sorted(_point_list(points)))
    if not hull:
        return (0.0, 0.0), (0.0, 0.0), 0.0
    if len(hull) == 1:
        return hull[0], (0.0, 0.0), 0.0
    if len(hull) == 2:
        (x0, y0), (x1, y1) = hull
        length = math.hypot(x1 - x0, y1 - y0)
        w, h, ux, uy, cx, cy = (
            length,
            0.0,
            (x1 - x0) / length,
            (y1 - y0) / length,
            (x0 + x1) / 2,
            (y0 + y1) / 2,
        )
    else:
        w, h, ux, uy, cx, cy = _calipers(hull)
    angle = math.degrees(math.atan2(uy, ux))
    quarter = math.floor(angle / 90.0)
    angle -= 90.0 * quarter
    if angle >= 90.0:  # float rounding at the boundary
        angle, quarter = 0.0, quarter + 1
    if quarter % 2:
        w, h = h, w
    return (cx, cy), (w, h), angle


def box_points(rect: RotatedRect) -> F32:
    """The four corners ``(4, 2)`` float32 of a rotated rectangle (replaces ``cv2.boxPoints``;
    same corner formula, so it reads OpenCV's rectangles as well as :func:`min_area_rect`'s)."""
    (cx, cy), (w, h), angle = rect
    b = math.cos(math.radians(angle)) * 0.5
    a = math.sin(math.radians(angle)) * 0.5
    p0 = (cx - a * h - b * w, cy + b * h - a * w)
    p1 = (cx + a * h - b * w, cy - b * h - a * w)
    return np.array(
        [p0, p1, (2 * cx - p0[0], 2 * cy - p0[1]), (2 * cx - p1[0], 2 * cy - p1[1])], dtype=np.float32
    )


def _point_list(points: ArrayLike) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2).tolist()]


def contour_area(points: ArrayLike) -> float:
    """Unsigned area of a closed polygon (shoelace). Replaces ``cv2.contourArea``."""
    pts = _point_list(points)
    if len(pts) < 3:
        return 0.0
    twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True))
    return abs(twice) / 2


def arc_length(points: ArrayLike, closed: bool = True) -> float:
    """Length of a polyline, closed back to its start if ``closed``. Replaces ``cv2.arcLength``."""
    pts = _point_list(points)
    if len(pts) < 2:
        return 0.0
    ends = pts[1:] + pts[:1] if closed else pts[1:]
    return sum(math.hypot(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(pts, ends, strict=False))


def _polygon_image(polygon: NDArray[np.int64], height: int, width: int) -> U8:
    """0/1 uint8 ``(height, width)`` raster of a polygon: Pillow's fill plus its 1-px outline."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    points = [(int(x), int(y)) for x, y in polygon.tolist()]
    if len(points) > 2:
        draw.polygon(points, fill=1)
    draw.line([*points, points[0]], fill=1, width=1)
    return np.asarray(canvas)


def fill_polygon(mask: NDArray[np.generic], polygon: ArrayLike, value: float = 1) -> None:
    """Fill one polygon (integer vertices, edges included) into a 2-D ``mask`` in place.

    Replaces ``cv2.fillPoly(mask, [polygon], value)``. Rasterised by Pillow (C): the interior plus
    the 1-px outline, as OpenCV draws it; about 0.1 % of pixels differ, all on slanted edges where
    the two line algorithms round a half-way step differently (tested). Pixels off the mask are
    ignored.
    """
    pts = np.asarray(polygon).reshape(-1, 2).astype(np.int64)
    if len(pts):
        mask[_polygon_image(pts, mask.shape[0], mask.shape[1]) != 0] = value


def masked_mean(values: NDArray[np.generic], mask: NDArray[np.generic]) -> float:
    """Mean of ``values`` where ``mask`` is non-zero, 0 if none. Replaces ``cv2.mean(values, mask)[0]``."""
    chosen = values[mask != 0]
    return float(chosen.mean()) if chosen.size else 0.0


def polygon_mean(values: NDArray[np.generic], polygon: ArrayLike) -> float:
    """Mean of a 2-D array over the pixels of a polygon (DB's box score).

    Replaces the ``fillPoly`` + ``mean`` pair over the polygon's bounding box (clipped to the
    array): the float vertices are truncated to integers as ``astype(np.int32)`` would.
    """
    pts = _point_list(polygon)
    height, width = values.shape[:2]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0 = min(max(math.floor(min(xs)), 0), width - 1)
    x1 = min(max(math.ceil(max(xs)), 0), width - 1)
    y0 = min(max(math.floor(min(ys)), 0), height - 1)
    y1 = min(max(math.ceil(max(ys)), 0), height - 1)
    shifted = np.array([(int(x - x0), int(y - y0)) for x, y in pts], dtype=np.int64)
    mask = _polygon_image(shifted, y1 - y0 + 1, x1 - x0 + 1)
    return masked_mean(values[y0 : y1 + 1, x0 : x1 + 1], mask)


# --------------------------------------------------------------------------------------------------
# Boxes


def _iou(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU of every box in ``a`` with every box in ``b`` (corner boxes), ``(len(a), len(b))``."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


_NMS_BLOCK = 1024  # boxes per IoU matrix: bounds memory at 8 MB per block


def nms_per_class(
    boxes: ArrayLike,
    scores: ArrayLike,
    classes: ArrayLike,
    score_threshold: float,
    iou_threshold: float,
) -> NDArray[np.intp]:
    """Greedy non-maximum suppression within each class; indices kept, best score first.

    Replaces ``cv2.dnn.NMSBoxesBatched(xywh, scores, classes, score_threshold, iou_threshold)`` but
    takes corner boxes ``(N, 4)`` as ``x0, y0, x1, y1``. As OpenCV (identical results, tested):
    scores must exceed ``score_threshold``; a box is dropped when its IoU with a kept box of its
    class exceeds ``iou_threshold``; equal scores keep input order. IoUs come from vectorised
    matrices per class (in blocks of 1024 boxes); only the greedy pass loops, once per kept box.
    """
    xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    label = np.asarray(classes).reshape(-1)
    if not (len(xyxy) == len(score) == len(label)):
        raise ValueError("boxes, scores and classes must have the same length")
    candidates = np.flatnonzero(score > score_threshold)
    candidates = candidates[np.argsort(-score[candidates], kind="stable")]  # best first, ties in order
    kept: list[NDArray[np.intp]] = []
    # Classes as a sorted set, not np.unique: that imports numpy.ma (~20 ms) on a cold start's first page.
    for value in sorted(set(label[candidates].tolist())):
        members = candidates[label[candidates] == value]
        survivors = np.zeros(0, dtype=np.intp)
        for start in range(0, len(members), _NMS_BLOCK):
            block = members[start : start + _NMS_BLOCK]
            alive = np.ones(len(block), dtype=bool)
            if len(survivors):  # boxes kept from earlier blocks outrank this whole block
                alive &= ~(_iou(xyxy[survivors], xyxy[block]) > iou_threshold).any(axis=0)
            suppress = _iou(xyxy[block], xyxy[block]) > iou_threshold
            for i in range(len(block)):
                if alive[i]:
                    alive[i + 1 :] &= ~suppress[i, i + 1 :]
            survivors = np.concatenate([survivors, block[alive]])
        kept.append(survivors)
    order = np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.intp)
    return order[np.argsort(-score[order], kind="stable")]


# --------------------------------------------------------------------------------------------------
# Binary morphology and thresholding (table rulings)


def adaptive_threshold_mean(gray: U8, block_size: int, c: float, max_value: int = 255) -> U8:
    """``max_value`` where a pixel exceeds the mean of its ``block_size`` square minus ``c``, else 0.

    Replaces ``cv2.adaptiveThreshold(gray, max_value, cv2.ADAPTIVE_THRESH_MEAN_C,
    cv2.THRESH_BINARY, block_size, c)`` exactly: OpenCV rounds the mean to an integer
    (edge-replicated border) and keeps ``pixel - mean > -ceil(c)``. With ``S`` the window's sum and
    ``A`` its area that is ``2 S < (2 (pixel + ceil(c)) - 1) A`` (no exact halves: ``A`` is odd),
    all in integers. Window sums from running sums along each axis.
    """
    if block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be odd and > 1, got {block_size}")
    radius, k = block_size // 2, block_size
    area = k * k
    padded = np.pad(gray, radius, mode="edge")
    columns = np.zeros((padded.shape[0] + 1, padded.shape[1]), dtype=np.int32)
    for i in range(padded.shape[0]):  # running sums down the rows: ~8x faster than cumsum(axis=0)
        np.add(columns[i], padded[i], out=columns[i + 1])
    vertical = columns[k:] - columns[:-k]  # (H, W + 2r): sums over k rows
    rows = np.zeros((vertical.shape[0], vertical.shape[1] + 1), dtype=np.int32)
    np.cumsum(vertical, axis=1, out=rows[:, 1:])
    total = rows[:, k:] - rows[:, :-k]  # (H, W): sums over the k x k window
    total *= 2
    bound = gray.astype(np.int32)
    bound *= 2
    bound += 2 * math.ceil(c) - 1
    bound *= area
    return np.where(total < bound, np.uint8(max_value), np.uint8(0))


def _open_runs(mask: NDArray[np.generic], length: int, anchor: int) -> U8:
    """Binary opening of every row by a ``1 x length`` segment, on run lengths.

    Erosion then dilation with OpenCV's unreflected kernel and anchor: a run of at least ``length``
    survives shifted by ``2 * anchor - length + 1`` (0 or 1); outside the image counts as
    foreground while eroding and background while dilating, so runs at the border survive longer.
    """
    height, width = mask.shape
    runs = run_lengths(mask)
    start, end = runs.start, runs.end
    shift = 2 * anchor - length + 1
    at_left, at_right = start == 0, end == width
    keep = np.where(
        at_left & at_right,
        True,
        np.where(
            at_left,
            end >= length - anchor,
            np.where(at_right, width - start >= anchor + 1, end - start >= length),
        ),
    )
    new_start = np.where(at_left, 0, start + shift)[keep]
    new_end = np.minimum(np.where(at_right, width, end + shift), width)[keep]
    row = runs.row[keep]
    out = np.zeros(height * width + 1, dtype=np.int8)
    np.add.at(out, row * width + new_start, 1)
    np.add.at(out, row * width + new_end, -1)
    filled = np.cumsum(out[:-1], dtype=np.int8).reshape(height, width)
    return (filled > 0).astype(np.uint8) * np.uint8(255)


def open_lines(mask: NDArray[np.generic], length: int, *, horizontal: bool, anchor: int | None = None) -> U8:
    """Keep only strokes at least ``length`` pixels long in one direction (0/255 uint8).

    Replaces ``cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT,
    (length, 1)))`` (``horizontal=True``) or ``(1, length)``: exact, including OpenCV's centre anchor
    ``length // 2`` (which moves an even-length opening one pixel right/down) and its border rule.
    """
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    anchor = length // 2 if anchor is None else anchor
    if horizontal:
        return _open_runs(mask, length, anchor)
    return np.ascontiguousarray(_open_runs(np.ascontiguousarray(mask.T), length, anchor).T)


def dilate3x3(mask: U8) -> U8:
    """Maximum over each pixel's 3x3 neighbourhood (grey or binary).

    Replaces ``cv2.dilate(mask, np.ones((3, 3), np.uint8))``: pixels outside the image do not count.
    """
    out = mask.copy()
    np.maximum(out[:, 1:], mask[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], mask[:, 1:], out=out[:, :-1])
    rows = out.copy()
    np.maximum(out[1:], rows[:-1], out=out[1:])
    np.maximum(out[:-1], rows[1:], out=out[:-1])
    return out


# --------------------------------------------------------------------------------------------------
# Encoding


def encode_png(image_rgb: U8, compress_level: int = 1) -> bytes:
    """PNG bytes of an RGB (or grey) uint8 image.

    Replaces ``cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()``:
    Pillow takes RGB as it is. At level 1 its files were 40 % smaller than OpenCV's on the devset
    pages and took twice as long (about 50 ms a page; docs/benchmarks/imaging.md).
    """
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_rgb)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
