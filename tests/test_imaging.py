"""docfn.core.imaging: each function on known geometry, then against OpenCV where it is installed
(OpenCV is a dev/benchmark dependency only; the parity tests skip without it)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docfn.core import imaging as im

RNG_SEED = 20261125


@pytest.fixture(scope="module")
def page(devset: Path) -> np.ndarray:
    """A real page with text and a ruled table (the devset's table page)."""
    return np.asarray(Image.open(devset / "007.png").convert("RGB"))


def _rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    u, v = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    c = np.array([cx, cy])
    return np.array(
        [
            c - u * w / 2 - v * h / 2,
            c + u * w / 2 - v * h / 2,
            c + u * w / 2 + v * h / 2,
            c - u * w / 2 + v * h / 2,
        ]
    )


def _blobs(rng: np.random.Generator, height: int = 60, width: int = 80) -> np.ndarray:
    """A binary mask of a few random filled ellipses and speckles."""
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 7))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        ax, ay = rng.uniform(1, 14, 2)
        t = rng.uniform(0, math.pi)
        dx, dy = xx - cx, yy - cy
        u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
        mask[(u / ax) ** 2 + (v / ay) ** 2 <= 1] = 1
    mask[rng.random((height, width)) < 0.02] = 1
    return mask


# --------------------------------------------------------------------------------------------------
# Known geometry


def test_channel_swap_and_grey_levels() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    bgr = im.rgb_to_bgr(rgb)
    assert bgr.flags.c_contiguous
    assert bgr[0, 0].tolist() == [0, 0, 255]
    assert np.array_equal(im.bgr_to_rgb(bgr), rgb)
    assert im.rgb_to_gray(rgb)[0].tolist() == [76, 150, 29, 255]  # 0.299, 0.587, 0.114 of 255
    assert im.bgr_to_gray(bgr)[0].tolist() == [76, 150, 29, 255]


def test_resize_geometry() -> None:
    flat = np.full((7, 9, 3), 77, dtype=np.uint8)
    assert np.array_equal(im.resize_bilinear(flat, 20, 3), np.full((3, 20, 3), 77, dtype=np.uint8))
    ramp = np.array([[0, 100]], dtype=np.uint8)
    # Half-pixel centres: output pixel x samples source x' = (x + 0.5) / 2 - 0.5, clamped at the ends.
    assert im.resize_bilinear(ramp, 4, 1).tolist() == [[0, 25, 75, 100]]
    same = im.resize_bilinear(flat, 9, 7)
    assert np.array_equal(same, flat) and same is not flat
    assert im.resize_bilinear(np.zeros((5, 6), np.uint8), 12, 10).shape == (10, 12)


def test_resize_shrinking_samples_unless_antialiased() -> None:
    stripes = np.zeros((4, 30), dtype=np.uint8)
    stripes[:, 1::2] = 255  # 1-px vertical stripes
    sampled = im.resize_bilinear(stripes, 10, 4)  # 3x shrink: every sample lands on a pixel centre
    smoothed = im.resize_bilinear(stripes, 10, 4, antialias=True)
    assert sampled[0].tolist() == [255, 0] * 5  # aliased, as OpenCV's INTER_LINEAR
    assert smoothed.std() < 30 and 100 < smoothed.mean() < 155


def test_resize_near_identity_uses_the_same_values_as_the_general_path() -> None:
    rng = np.random.default_rng(RNG_SEED)
    image = rng.integers(0, 256, (50, 301, 3), dtype=np.uint8)
    fast = im.resize_bilinear(image, 309, 50)  # a page to a multiple of 32: stretches are sliced
    left, right, weight, slices = im._linear_taps(301, 309)
    assert slices is not None
    w = weight[:, None].astype(int)
    expected = (image[:, left].astype(int) * (256 - w) + image[:, right] * w + 128) >> 8
    assert np.array_equal(fast, expected.astype(np.uint8))


@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_resize_shrinking_both_axes_is_the_two_pass_lerp(channels: int | None) -> None:
    """Shrinking both axes (the layout model's input: columns gathered from the vertical pass's
    16-bit sums) gives exactly rows then columns, each ``(a * (256 - w) + b * w + 128) >> 8``."""
    rng = np.random.default_rng(RNG_SEED)
    for height, width, out_h, out_w in [(1651, 1275, 800, 608), (300, 41, 97, 13), (64, 900, 7, 211)]:
        shape = (height, width) if channels is None else (height, width, channels)
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        top, bottom, row_w, _ = im._linear_taps(height, out_h)
        left, right, col_w, slices = im._linear_taps(width, out_w)
        assert slices is None
        rw = row_w.astype(int).reshape(-1, *([1] * (image.ndim - 1)))
        rows = (image[top].astype(int) * (256 - rw) + image[bottom] * rw + 128) >> 8
        cw = col_w.astype(int).reshape(1, -1, *([1] * (image.ndim - 2)))
        expected = (rows[:, left] * (256 - cw) + rows[:, right] * cw + 128) >> 8
        assert np.array_equal(im.resize_bilinear(image, out_w, out_h), expected.astype(np.uint8))


def test_rotate180() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert im.rotate180(image).tolist() == [[11, 10, 9, 8], [7, 6, 5, 4], [3, 2, 1, 0]]


def test_perspective_transform_maps_the_corners() -> None:
    src = np.array([[10, 20], [110, 25], [105, 60], [12, 55]], dtype=np.float64)
    dst = np.array([[0, 0], [100, 0], [100, 40], [0, 40]], dtype=np.float64)
    matrix = im.perspective_transform(src, dst)
    mapped = np.c_[src, np.ones(4)] @ matrix.T
    assert np.allclose(mapped[:, :2] / mapped[:, 2:], dst)


def test_perspective_crop_of_an_upright_box_is_the_slice() -> None:
    image = np.random.default_rng(RNG_SEED).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    quad = [[5, 7], [35, 7], [35, 27], [5, 27]]
    assert np.array_equal(im.perspective_crop(image, quad, (30, 20)), image[7:27, 5:35])


def test_perspective_crop_straightens_a_rotated_bar() -> None:
    yy, xx = np.mgrid[:200, :200]
    quad = _rotated_rect(100, 100, 120, 30, 25)
    image = np.zeros((200, 200), dtype=np.uint8)
    inside = np.ones((200, 200), dtype=bool)
    for p, q in zip(quad, np.roll(quad, -1, axis=0), strict=True):  # left of every clockwise edge
        inside &= (q[0] - p[0]) * (yy - p[1]) - (q[1] - p[1]) * (xx - p[0]) >= 0
    image[inside] = 255
    crop = im.perspective_crop(image, quad, (120, 30))
    assert crop.shape == (30, 120)
    assert crop[3:-3, 3:-3].min() > 200  # all bar, nothing of the black background
    outside = im.perspective_crop(image, quad + np.array([0, 40]), (120, 30))  # moved off the bar
    assert outside[10:20, 10:110].max() < 50


def test_run_lengths_and_region_hulls() -> None:
    mask = np.zeros((12, 20), dtype=np.uint8)
    mask[1:4, 2:8] = 1  # a rectangle
    mask[6:11, 10:12] = 1  # an L
    mask[10, 12:16] = 1
    mask[8:11, 2:5] = 1  # a ring: its hole is not a region
    mask[9, 3] = 0
    mask[5, 17] = 1  # a single pixel
    runs = im.run_lengths(mask)
    assert (runs.row[0], runs.start[0], runs.end[0]) == (1, 2, 8)
    hulls = im.find_region_hulls(mask)[::-1]  # listed last-found first, as OpenCV lists contours
    assert [h.shape[1:] for h in hulls] == [(1, 2)] * 4
    as_sets = [sorted(map(tuple, h.reshape(-1, 2).tolist())) for h in hulls]
    assert as_sets[0] == [(2, 1), (2, 3), (7, 1), (7, 3)]  # by the first pixel's raster order
    assert as_sets[1] == [(17, 5)]
    assert set(as_sets[2]) == {(10, 6), (11, 6), (15, 10), (10, 10)}  # the L's inner corner is not
    assert set(as_sets[3]) == {(2, 8), (4, 8), (4, 10), (2, 10)}


def test_diagonal_pixels_join_with_8_connectivity_only() -> None:
    mask = np.eye(4, dtype=np.uint8)
    assert len(im.find_region_hulls(mask)) == 1
    assert len(im.find_region_hulls(mask, connectivity=4)) == 4
    count, labels, stats, _ = im.connected_components_with_stats(mask, connectivity=4)
    assert count == 5 and labels.max() == 4 and stats[1:, 4].tolist() == [1, 1, 1, 1]


def test_min_area_rect_of_a_rotated_rectangle() -> None:
    corners = _rotated_rect(50, 40, 60, 20, 30)
    inner = corners.mean(axis=0) + np.random.default_rng(RNG_SEED).uniform(-5, 5, (20, 2))
    (cx, cy), (w, h), angle = im.min_area_rect(np.vstack([corners, inner]))
    assert (cx, cy) == pytest.approx((50, 40), abs=1e-6)
    assert sorted((w, h)) == pytest.approx([20, 60], abs=1e-6)
    assert 0 <= angle < 90
    box = im.box_points(((cx, cy), (w, h), angle))
    assert box.dtype == np.float32
    distances = np.linalg.norm(box[:, None] - corners[None], axis=2).min(axis=1)
    assert distances.max() < 1e-3


def test_min_area_rect_degenerate_and_axis_aligned() -> None:
    assert im.min_area_rect([[3, 4]]) == ((3.0, 4.0), (0.0, 0.0), 0.0)
    (_, (w, h), _) = im.min_area_rect([[0, 0], [10, 0]])
    assert sorted((w, h)) == [0, 10]
    rect = im.min_area_rect([[0, 0], [10, 0], [10, 4], [0, 4], [5, 2]])
    assert rect == ((5.0, 2.0), (10.0, 4.0), 0.0)


def test_min_area_rect_matches_trying_every_hull_edge() -> None:
    """The calipers' three pointers against the O(m^2) definition: every edge, every point."""
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(300):
        points = rng.normal(0, 1, (int(rng.integers(3, 60)), 2)) * rng.uniform(0.5, 40, 2)
        if rng.random() < 0.5:
            points = np.round(points)  # duplicates and collinear runs, as on pixel grids
        hull = im.convex_hull(points)
        if len(hull) < 3:
            continue
        edges = np.roll(hull, -1, axis=0) - hull
        u = edges / np.linalg.norm(edges, axis=1, keepdims=True)
        along, across = points @ u.T, points @ np.c_[-u[:, 1], u[:, 0]].T
        areas = np.ptp(along, axis=0) * np.ptp(across, axis=0)
        (_, (w, h), _) = im.min_area_rect(points)
        assert w * h == pytest.approx(areas.min(), rel=1e-9, abs=1e-9)


def test_hull_area_and_length() -> None:
    square = [[0, 0], [4, 0], [4, 4], [0, 4], [2, 2], [1, 3]]
    assert sorted(map(tuple, im.convex_hull(square).tolist())) == [(0, 0), (0, 4), (4, 0), (4, 4)]
    assert im.contour_area(np.array([[0, 0], [4, 0], [4, 3]]).reshape(-1, 1, 2)) == 6
    assert im.arc_length([[0, 0], [4, 0], [4, 3]], closed=True) == 12
    assert im.arc_length([[0, 0], [4, 0], [4, 3]], closed=False) == 7


def test_fill_polygon_and_polygon_mean() -> None:
    mask = np.zeros((10, 12), dtype=np.uint8)
    im.fill_polygon(mask, np.array([[2, 1], [8, 1], [8, 5], [2, 5]]), 7)
    expected = np.zeros_like(mask)
    expected[1:6, 2:9] = 7  # edges included
    assert np.array_equal(mask, expected)
    values = np.tile(np.arange(12, dtype=np.float32), (10, 1))  # value = x
    assert im.polygon_mean(values, [[2.7, 1.2], [8.9, 1.0], [8.2, 5.5], [2.1, 5.9]]) == pytest.approx(5.0)
    assert im.masked_mean(values, np.zeros_like(mask)) == 0.0


def test_nms_per_class() -> None:
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60], [4, 0, 14, 10]]
    scores = [0.8, 0.9, 0.7, 0.6, 0.55]
    classes = [0, 0, 1, 0, 0]
    # Box 1 beats 0 (IoU 0.68), not 4 (IoU 0.46) at 0.5; class 1 is apart; box 3 is alone.
    assert im.nms_per_class(boxes, scores, classes, 0.5, 0.5).tolist() == [1, 2, 3, 4]
    assert im.nms_per_class(boxes, scores, classes, 0.6, 0.5).tolist() == [1, 2]  # strictly above
    assert im.nms_per_class(boxes, scores, classes, 0.5, 0.4).tolist() == [1, 2, 3]
    assert im.nms_per_class([], [], [], 0.5, 0.5).tolist() == []


def test_nms_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(RNG_SEED)
    corners = rng.uniform(0, 300, (400, 2))
    boxes = np.c_[corners, corners + rng.uniform(5, 60, (400, 2))]
    scores, classes = rng.uniform(0, 1, 400), rng.integers(0, 2, 400)
    whole = im.nms_per_class(boxes, scores, classes, 0.2, 0.3)
    monkeypatch.setattr(im, "_NMS_BLOCK", 7)
    assert im.nms_per_class(boxes, scores, classes, 0.2, 0.3).tolist() == whole.tolist()


def test_adaptive_threshold_marks_strokes_above_the_local_mean() -> None:
    gray = np.full((30, 40), 10, dtype=np.uint8)
    assert not im.adaptive_threshold_mean(gray, 15, -2).any()
    gray[15, 5:35] = 200
    binary = im.adaptive_threshold_mean(gray, 15, -2)
    assert set(np.unique(binary)) == {0, 255}
    assert binary[15, 5:35].all() and binary.sum() == 255 * 30


def test_open_lines_keeps_long_strokes() -> None:
    mask = np.zeros((20, 100), dtype=np.uint8)
    mask[5, 10:71] = 255  # 61 px: stays
    mask[12, 40:50] = 255  # 10 px: goes
    mask[0:15, 90] = 255  # vertical 15 px
    horizontal = im.open_lines(mask, 41, horizontal=True)
    assert horizontal[5].nonzero()[0].tolist() == list(range(10, 71)) and not horizontal[12].any()
    even = im.open_lines(mask, 40, horizontal=True)  # OpenCV's even-length anchor: one pixel right
    assert even[5].nonzero()[0].tolist() == list(range(11, 72))
    vertical = im.open_lines(mask, 9, horizontal=False)
    assert vertical[:, 90].nonzero()[0].tolist() == list(range(15)) and vertical.sum() == 255 * 15


def test_connected_components_with_stats() -> None:
    mask = np.zeros((10, 12), dtype=np.uint8)
    mask[1:3, 1:5] = 255
    mask[5:9, 8:10] = 255
    mask[6, 2] = 255
    count, labels, stats, centroids = im.connected_components_with_stats(mask)
    assert count == 4
    assert stats.tolist() == [[0, 0, 12, 10, 120 - 17], [1, 1, 4, 2, 8], [8, 5, 2, 4, 8], [2, 6, 1, 1, 1]]
    assert centroids[1].tolist() == [2.5, 1.5] and centroids[3].tolist() == [2.0, 6.0]
    assert (labels == 2).sum() == 8 and labels[6, 2] == 3 and labels[0, 0] == 0
    empty = im.connected_components_with_stats(np.zeros((3, 4), np.uint8))
    assert empty[0] == 1 and empty[2].tolist() == [[0, 0, 4, 3, 12]]


def test_dilate3x3() -> None:
    mask = np.zeros((5, 6), dtype=np.uint8)
    mask[2, 3] = 9
    mask[0, 0] = 4
    out = im.dilate3x3(mask)
    assert out[1:4, 2:5].tolist() == [[9] * 3] * 3
    assert out[0:2, 0:2].tolist() == [[4, 4], [4, 4]]
    assert int((out > 0).sum()) == 9 + 4


def test_encode_png_round_trip() -> None:
    image = np.random.default_rng(RNG_SEED).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    data = im.encode_png(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), image)


# --------------------------------------------------------------------------------------------------
# Parity with OpenCV


@pytest.fixture(scope="module")
def cv2():  # type: ignore[no-untyped-def]
    return pytest.importorskip("cv2")


def test_parity_colour(cv2, page: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(im.rgb_to_bgr(page), cv2.cvtColor(page, cv2.COLOR_RGB2BGR))
    for image in (page, noise):
        assert np.abs(im.rgb_to_gray(image).astype(int) - cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)).max() <= 1
        assert np.abs(im.bgr_to_gray(image).astype(int) - cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)).max() <= 1
    assert np.array_equal(im.rotate180(page), cv2.rotate(page, cv2.ROTATE_180))


@pytest.mark.parametrize(
    "size",
    [(1248, 1760), (608, 800), (1241, 1760), (300, 200), (97, 1203)],
    ids=["det-page", "layout", "rows-only", "shrink-5x", "odd"],
)
def test_parity_resize_page(cv2, page: np.ndarray, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    ours = im.resize_bilinear(page, *size).astype(int)
    theirs = cv2.resize(page, size, interpolation=cv2.INTER_LINEAR)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 2 and np.abs(ours - theirs).mean() < 0.05


def test_parity_resize_crops(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(30):
        h, w = int(rng.integers(5, 80)), int(rng.integers(5, 600))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        width = max(1, round(48 * w / h))
        diff = np.abs(im.resize_bilinear(image, width, 48).astype(int) - cv2.resize(image, (width, 48)))
        assert diff.max() <= 2


def test_parity_warp(cv2, page: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(8):
        quad = _rotated_rect(rng.uniform(100, 1100), rng.uniform(100, 1600), 300, 40, rng.uniform(-15, 15))
        quad = (quad + rng.normal(0, 2, (4, 2))).astype(np.float32)
        target = np.array([[0, 0], [300, 0], [300, 40], [0, 40]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(quad, target)
        assert np.allclose(im.perspective_transform(quad, target), matrix, rtol=1e-3, atol=1e-3)
        linear = cv2.warpPerspective(
            page, matrix, (300, 40), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        assert (
            np.abs(
                im.warp_perspective(page, matrix, (300, 40), resample="bilinear").astype(int) - linear
            ).max()
            <= 1
        )
        cubic = cv2.warpPerspective(
            page, matrix, (300, 40), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        diff = np.abs(im.perspective_crop(page, quad, (300, 40), resample="bicubic").astype(int) - cubic)
        assert diff.mean() < 3  # Pillow's cubic kernel is a = -0.5, OpenCV's -0.75: softer edges
        assert np.array_equal(
            im.perspective_crop(page, quad, (300, 40)), im.warp_perspective(page, matrix, (300, 40))
        )
    edge = np.array([[-10, -5], [100, -5], [100, 30], [-10, 30]], dtype=np.float32)  # reaches off the page
    matrix = cv2.getPerspectiveTransform(
        edge, np.array([[0, 0], [110, 0], [110, 35], [0, 35]], dtype=np.float32)
    )
    linear = cv2.warpPerspective(
        page, matrix, (110, 35), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    assert (
        np.abs(im.warp_perspective(page, matrix, (110, 35), resample="bilinear").astype(int) - linear).max()
        <= 1
    )


def test_parity_region_hulls_and_rectangles(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(150):
        mask = _blobs(rng)
        contours, _ = cv2.findContours(mask * 255, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hulls = im.find_region_hulls(mask)
        theirs = sorted(sorted(map(tuple, cv2.convexHull(c).reshape(-1, 2).tolist())) for c in contours)
        ours = sorted(sorted(map(tuple, h.reshape(-1, 2).tolist())) for h in hulls)
        assert ours == theirs
        for hull in hulls:
            (_, (w, h), _) = im.min_area_rect(hull)
            (_, (cw, ch), _) = cv2.minAreaRect(hull)
            assert w * h == pytest.approx(cw * ch, rel=1e-4, abs=1e-4)


def test_parity_min_area_rect_on_points(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(300):
        points = (rng.normal(0, 1, (int(rng.integers(3, 40)), 2)) * rng.uniform(1, 50, 2)).astype(np.float32)
        rect, theirs = im.min_area_rect(points), cv2.minAreaRect(points)
        assert rect[1][0] * rect[1][1] == pytest.approx(theirs[1][0] * theirs[1][1], rel=1e-4)
        # Equal areas, possibly different rectangles (a triangle has three optimal ones): ours encloses.
        corners = im.box_points(rect).astype(np.float64)
        for k in range(4):
            edge, normal = corners[(k + 1) % 4] - corners[k], corners[(k + 3) % 4] - corners[k]
            rel = points - corners[k]
            side = np.sign(edge[0] * normal[1] - edge[1] * normal[0])
            cross = edge[0] * rel[:, 1] - edge[1] * rel[:, 0]
            assert (side * cross >= -1e-3 * np.linalg.norm(edge) - 1e-3).all()
        box = points.reshape(-1, 1, 2)
        assert im.contour_area(box) == pytest.approx(cv2.contourArea(box), rel=1e-5)
        assert im.arc_length(box, True) == pytest.approx(cv2.arcLength(box, True), rel=1e-5)


def test_parity_fill_polygon(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    differ = total = 0
    for _ in range(500):
        cx, cy = rng.uniform(60, 140, 2)
        quad = _rotated_rect(cx, cy, rng.uniform(1, 60), rng.uniform(1, 20), rng.uniform(-45, 45))
        points = quad.astype(np.int32)
        theirs = np.zeros((200, 200), np.uint8)
        cv2.fillPoly(theirs, points.reshape(1, -1, 2), 1)
        ours = np.zeros((200, 200), np.uint8)
        im.fill_polygon(ours, points, 1)
        differ += int((ours != theirs).sum())
        total += int(theirs.sum())
    assert differ / total < 0.005


def test_parity_nms(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for trial in range(100):
        n = int(rng.integers(1, 60)) if trial else 2500  # the first spans several IoU blocks
        xy, wh = rng.uniform(0, 200, (n, 2)), rng.uniform(5, 80, (n, 2))
        scores, classes = rng.uniform(0, 1, n), rng.integers(0, 3, n)
        theirs = cv2.dnn.NMSBoxesBatched(np.c_[xy, wh].tolist(), scores.tolist(), classes.tolist(), 0.3, 0.5)
        ours = im.nms_per_class(np.c_[xy, xy + wh], scores, classes, 0.3, 0.5)
        assert ours.tolist() == np.asarray(theirs).reshape(-1).tolist()


def test_parity_rulings_operations(cv2, page: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    gray = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    binary = cv2.adaptiveThreshold(~gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 15, -2)
    assert np.array_equal(im.adaptive_threshold_mean(~gray, 15, -2), binary)
    for length, horizontal in [(41, True), (40, True), (58, False), (25, False)]:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if horizontal else (1, length))
        opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
        assert np.array_equal(im.open_lines(binary, length, horizontal=horizontal), opened)
        count, _, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        ours = im.connected_components_with_stats(opened, connectivity=8)
        assert ours[0] == count
        assert sorted(map(tuple, ours[2].tolist())) == sorted(map(tuple, stats.tolist()))
    assert np.array_equal(im.dilate3x3(binary), cv2.dilate(binary, np.ones((3, 3), np.uint8)))


def test_parity_morphology_and_components_on_noise(cv2) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(100):
        mask = (rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 40)))) < 0.7).astype(np.uint8) * 255
        length, horizontal = int(rng.integers(1, 12)), bool(rng.integers(0, 2))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if horizontal else (1, length))
        assert np.array_equal(
            im.open_lines(mask, length, horizontal=horizontal), cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        )
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=4)
        ours = im.connected_components_with_stats(mask, connectivity=4)
        assert ours[0] == count and np.array_equal(ours[1], labels) and np.array_equal(ours[2][1:], stats[1:])
        assert np.allclose(ours[3][1:], centroids[1:])
        if (mask == 0).any():  # with no background OpenCV's row 0 holds sentinels, ours zeros
            assert np.array_equal(ours[2][0], stats[0]) and np.allclose(ours[3][0], centroids[0])
        gray = rng.integers(0, 256, mask.shape, dtype=np.uint8)
        if min(mask.shape) >= 1:
            theirs = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 5, -2)
            assert np.array_equal(im.adaptive_threshold_mean(gray, 5, -2), theirs)
        assert np.array_equal(im.dilate3x3(gray), cv2.dilate(gray, np.ones((3, 3), np.uint8)))
