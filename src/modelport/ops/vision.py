"""Sampling and detection: GridSample, RoiAlign, NonMaxSuppression, MaxUnpool, Col2Im."""

from __future__ import annotations

import io
import itertools
from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import shape_of


def _unnormalize(ctx: Any, coord: Any, size: int, align_corners: int) -> Any:
    return ((coord + 1) / 2) * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2


def _reflect(ctx: Any, x: Any, low: float, high: float) -> Any:
    xp = ctx.xp
    span = high - low
    if span <= 0:
        return xp.zeros_like(x)
    d = xp.abs(x - low)
    flips = xp.floor(d / span)
    extra = d - flips * span
    return xp.where(flips % 2 == 0, low + extra, high - extra)


@op("GridSample", 16, 20, 22)
def grid_sample(ctx: Any, x: Any, grid: Any, *, align_corners: int = 0, mode: str,
                padding_mode: str = "zeros") -> Any:
    """N-d grid sampling; ``grid[..., 0]`` indexes the last spatial axis (x), as in the spec."""
    xp = ctx.xp
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    spatial = shape_of(x)[2:]
    nd = len(spatial)
    coords = []
    for i in range(nd):  # grid's last axis lists coordinates from the innermost axis out
        size = spatial[nd - 1 - i]
        coord = _unnormalize(ctx, grid[..., i], size, align_corners)
        if padding_mode == "border":
            coord = xp.clip(coord, 0, size - 1)
        elif padding_mode == "reflection":
            coord = (_reflect(ctx, coord, 0, size - 1) if align_corners
                     else xp.clip(_reflect(ctx, coord, -0.5, size - 0.5), 0, size - 1))
        coords.append(coord)
    return _sample(ctx, x, coords[::-1], mode, padding_mode)


def _sample(ctx: Any, x: Any, coords: list[Any], mode: str, padding_mode: str) -> Any:
    """``x`` [N, C, *spatial] read at pixel coordinates ``coords`` (one array [N, *out] per
    spatial axis, in axis order) by ``mode``; points outside read 0 when ``padding_mode`` is
    "zeros" (the others have clipped the coordinates already)."""
    xp = ctx.xp
    dims = shape_of(x)
    n, c, spatial = dims[0], dims[1], dims[2:]
    nd = len(spatial)
    out_spatial = shape_of(coords[0])[1:]
    flat = xp.reshape(x, (n, c, -1))
    strides = [int(np.prod(spatial[a + 1:])) for a in range(nd)]

    def gather(indices: list[Any]) -> Any:
        inside = None
        linear = 0
        for a, idx in enumerate(indices):
            ok = (idx >= 0) & (idx < spatial[a])
            inside = ok if inside is None else inside & ok
            linear = linear + xp.clip(idx, 0, spatial[a] - 1) * strides[a]
        linear = xp.reshape(xp.astype(linear, xp.int64), (n, 1, -1))
        values = xp.take_along_axis(flat, xp.broadcast_to(linear, (n, c, linear.shape[2])),
                                    axis=2)
        values = xp.reshape(values, (n, c, *out_spatial))
        if padding_mode == "zeros":
            values = xp.where(xp.reshape(inside, (n, 1, *out_spatial)), values,
                              xp.zeros_like(values))
        return values

    if mode == "nearest":
        return gather([xp.round(cd) for cd in coords])
    if mode in ("linear", "bilinear"):  # GridSample-16 names them bilinear and bicubic
        base = [xp.floor(cd) for cd in coords]
        out = 0
        for corner in itertools.product((0, 1), repeat=nd):
            weight = 1
            for a, bit in enumerate(corner):
                frac = coords[a] - base[a]
                weight = weight * (frac if bit else 1 - frac)
            out = out + gather([b + bit for b, bit in zip(base, corner, strict=True)]) * \
                xp.reshape(weight, (n, 1, *out_spatial))
        return xp.astype(out, x.dtype)
    # cubic: 4 taps per axis with A = -0.75
    base = [xp.floor(cd) for cd in coords]
    out = 0
    for corner in itertools.product(range(-1, 3), repeat=nd):
        weight = 1
        for a, tap in enumerate(corner):
            weight = weight * _cubic_weight(ctx, coords[a] - base[a] - tap)
        out = out + gather([b + t for b, t in zip(base, corner, strict=True)]) * \
            xp.reshape(weight, (n, 1, *out_spatial))
    return xp.astype(out, x.dtype)


def _cubic_weight(ctx: Any, t: Any, a: float = -0.75) -> Any:
    xp = ctx.xp
    t = xp.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return xp.where(t <= 1, near, xp.where(t < 2, far, xp.zeros_like(t)))


@op("DeformConv", 19, 22)
def deform_conv(ctx: Any, x: Any, w: Any, offset: Any, b: Any = None, mask: Any = None, *,
                dilations: list[int] | None = None, group: int = 1,
                kernel_shape: list[int] | None = None, offset_group: int = 1,
                pads: list[int] | None = None, strides: list[int] | None = None) -> Any:
    """A convolution whose every tap reads ``x`` at its own offset (bilinear, zeros outside),
    scaled by ``mask``: sample the taps into columns, then one grouped matmul."""
    xp = ctx.xp
    n, c, *spatial = shape_of(x)
    nd = len(spatial)
    kernel = list(kernel_shape or shape_of(w)[2:])
    dilations, strides = dilations or [1] * nd, strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    out = shape_of(offset)[2:]
    taps = list(itertools.product(*(range(k) for k in kernel)))
    # offset: [N, offset_group * taps * nd, *out], each tap's shift per axis
    offset = xp.reshape(offset, (n, offset_group, len(taps), nd, *out))
    if mask is not None:
        mask = xp.reshape(mask, (n, offset_group, len(taps), *out))
    per_group = c // offset_group
    columns = []
    for g in range(offset_group):
        part = x[:, g * per_group:(g + 1) * per_group]
        sampled = []
        for t, tap in enumerate(taps):
            coords = []
            for a in range(nd):
                start = np.arange(out[a]) * strides[a] - pads[a] + tap[a] * dilations[a]
                start = start.reshape([out[a] if i == a else 1 for i in range(nd)])
                coords.append(xp.asarray(start, dtype=x.dtype) + offset[:, g, t, a])
            values = _sample(ctx, part, coords, "linear", "zeros")
            sampled.append(values if mask is None else values * mask[:, g:g + 1, t])
        columns.append(xp.stack(sampled, axis=2))  # N, C / offset_group, taps, *out
    points = int(np.prod(out))
    cols = xp.reshape(xp.concat(columns, axis=1), (n, group, c // group * len(taps), points))
    oc = shape_of(w)[0]
    weights = xp.reshape(w, (1, group, oc // group, c // group * len(taps)))
    y = xp.reshape(xp.matmul(weights, cols), (n, oc, *out))
    return y if b is None else y + xp.reshape(b, (1, oc, *([1] * nd)))


@op("AffineGrid", 20, host=(1,))
def affine_grid(ctx: Any, theta: Any, size: Any, *, align_corners: int = 0) -> Any:
    """The sampling grid of ``theta`` ([N, 2, 3] or [N, 3, 4]) over ``size`` [N, C, (D,) H, W]:
    each output point is ``theta @ (x, y, (z,) 1)``, x along the last axis, coordinates in
    [-1, 1] at the pixel corners (``align_corners``) or centres."""
    xp = ctx.xp
    spatial = [int(d) for d in np.asarray(size).reshape(-1)[2:]]
    axes = [np.linspace(-1, 1, d) if align_corners else (np.arange(d) * 2 + 1) / d - 1
            for d in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([*mesh[::-1], np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)
    grid = xp.matmul(theta, xp.asarray(base.T, dtype=theta.dtype))  # N, dims, points
    return xp.reshape(xp.permute_dims(grid, (0, 2, 1)), (shape_of(theta)[0], *spatial,
                                                          len(spatial)))


@op("ImageDecoder", 20, host=(0,))
def image_decoder(ctx: Any, encoded: Any, *, pixel_format: str = "RGB") -> Any:
    """An encoded image (JPEG, PNG, BMP, TIFF, WebP, JPEG 2000, PNM bytes) as [H, W, C]
    uint8, decoded by Pillow on the host."""
    try:
        import PIL.Image
    except ImportError as exc:
        raise NotImplementedError("ImageDecoder needs Pillow: pip install 'modelport[images]'") \
            from exc
    with PIL.Image.open(io.BytesIO(np.asarray(encoded, np.uint8).tobytes())) as image:
        if pixel_format == "Grayscale":
            return np.asarray(image.convert("L"))[:, :, None]
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1]) if pixel_format == "BGR" else rgb


@op("NonMaxSuppression", 10, 11, host=(0, 1, 2, 3, 4))
def non_max_suppression(ctx: Any, boxes: Any, scores: Any, max_output_boxes_per_class: Any = None,
                        iou_threshold: Any = None, score_threshold: Any = None, *,
                        center_point_box: int = 0) -> Any:
    limit = 0 if max_output_boxes_per_class is None else int(np.asarray(
        max_output_boxes_per_class).reshape(-1)[0])
    iou_limit = 0.0 if iou_threshold is None else float(np.asarray(iou_threshold).reshape(-1)[0])
    floor = None if score_threshold is None else float(np.asarray(score_threshold).reshape(-1)[0])
    boxes = np.asarray(boxes, dtype=np.float64)
    if center_point_box:
        cx, cy, w, h = np.moveaxis(boxes, -1, 0)
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)
    y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)
    top, bottom = np.minimum(y1, y2), np.maximum(y1, y2)
    left, right = np.minimum(x1, x2), np.maximum(x1, x2)
    selected = []
    for b in range(boxes.shape[0]):
        area = (bottom[b] - top[b]) * (right[b] - left[b])
        for c in range(scores.shape[1]):
            s = np.asarray(scores[b, c])
            order = [i for i in np.argsort(-s, kind="stable") if floor is None or s[i] > floor]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                ok = True
                for k in kept:
                    ih = max(0.0, min(bottom[b, i], bottom[b, k]) - max(top[b, i], top[b, k]))
                    iw = max(0.0, min(right[b, i], right[b, k]) - max(left[b, i], left[b, k]))
                    inter = ih * iw
                    union = area[i] + area[k] - inter
                    if union > 0 and inter / union > iou_limit:
                        ok = False
                        break
                if ok:
                    kept.append(int(i))
            selected += [[b, c, i] for i in kept]
    return np.array(selected, dtype=np.int64).reshape(-1, 3)


@op("RoiAlign", 10, 16, 22, host=(1, 2))
def roi_align(ctx: Any, x: Any, rois: Any, batch_indices: Any, *,
              coordinate_transformation_mode: str = "half_pixel", mode: str = "avg",
              output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
              spatial_scale: float = 1.0) -> Any:
    xp = ctx.xp
    _, c, height, width = shape_of(x)
    offset = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    results = []
    for roi, b in zip(np.asarray(rois, dtype=np.float64), np.asarray(batch_indices),
                      strict=True):
        x1, y1, x2, y2 = roi * spatial_scale - offset
        roi_w, roi_h = x2 - x1, y2 - y1
        if coordinate_transformation_mode != "half_pixel":
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / output_height, roi_w / output_width
        grid_h = sampling_ratio or int(np.ceil(roi_h / output_height))
        grid_w = sampling_ratio or int(np.ceil(roi_w / output_width))
        ys = y1 + (np.arange(output_height)[:, None] + (np.arange(grid_h)[None, :] + 0.5)
                   / grid_h) * bin_h
        xs = x1 + (np.arange(output_width)[:, None] + (np.arange(grid_w)[None, :] + 0.5)
                   / grid_w) * bin_w
        weights, indices = _bilinear_taps(ys.reshape(-1), xs.reshape(-1), height, width)
        image = xp.reshape(x[int(b)], (c, -1))
        taps = xp.take(image, xp.asarray(indices.reshape(-1)), axis=1)
        taps = xp.reshape(taps, (c, *indices.shape))  # c, ys, xs, 4
        w = xp.asarray(weights, dtype=x.dtype)
        if mode == "avg":
            sampled = xp.sum(taps * w, axis=-1)
            sampled = xp.reshape(sampled, (c, output_height, grid_h, output_width, grid_w))
            results.append(xp.mean(sampled, axis=(2, 4)))
        else:
            sampled = xp.max(taps * w, axis=-1)
            sampled = xp.reshape(sampled, (c, output_height, grid_h, output_width, grid_w))
            results.append(xp.max(sampled, axis=(2, 4)))
    return xp.stack(results)


def _bilinear_taps(ys: np.ndarray, xs: np.ndarray, height: int,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and flat indices of the 4 neighbours of each (y, x) sample, as RoiAlign's spec."""
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    outside = (yy < -1) | (yy > height) | (xx < -1) | (xx > width)
    yy, xx = np.clip(yy, 0, None), np.clip(xx, 0, None)
    y0 = np.minimum(np.floor(yy).astype(np.int64), height - 1)
    x0 = np.minimum(np.floor(xx).astype(np.int64), width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    yy = np.where(y0 >= height - 1, y0, yy)
    xx = np.where(x0 >= width - 1, x0, xx)
    ly, lx = yy - y0, xx - x0
    hy, hx = 1 - ly, 1 - lx
    weights = np.stack([hy * hx, hy * lx, ly * hx, ly * lx], axis=-1)
    weights[outside] = 0
    indices = np.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1],
                       axis=-1)
    return weights, indices


@op("MaxUnpool", 9, 11, 22, host=(1, 2))
def max_unpool(ctx: Any, x: Any, indices: Any, output_shape: Any = None, *,
               kernel_shape: list[int], pads: list[int] | None = None,
               strides: list[int] | None = None) -> Any:
    xp = ctx.xp
    dims = shape_of(x)
    nd = len(dims) - 2
    strides = strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    unpooled = [*dims[:2], *((dims[2 + i] - 1) * strides[i] - pads[i] - pads[i + nd]
                             + kernel_shape[i] for i in range(nd))]
    out = unpooled if output_shape is None else [int(d) for d in output_shape]
    total = int(np.prod(out))
    flat = xp.zeros((total,), dtype=x.dtype)
    positions = np.asarray(indices).reshape(-1)
    if out != unpooled:  # the indices count in the unpooled shape: same place, larger image
        positions = np.ravel_multi_index(np.unravel_index(positions, unpooled), out)
    # The indices of a MaxPool are per (n, c) image; MaxPool's own are already global.
    flat = ctx.k.scatter_nd(flat, xp.asarray(positions.reshape(-1, 1)), xp.reshape(x, (-1,)),
                            "none")
    return xp.reshape(flat, tuple(out))


@op("Col2Im", 18, host=(1, 2))
def col2im(ctx: Any, x: Any, image_shape: Any, block_shape: Any, *,
           dilations: list[int] | None = None, pads: list[int] | None = None,
           strides: list[int] | None = None) -> Any:
    xp = ctx.xp
    image = [int(d) for d in image_shape]
    block = [int(d) for d in block_shape]
    nd = len(image)
    dilations = dilations or [1] * nd
    strides = strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    n, cols, _ = shape_of(x)
    c = cols // int(np.prod(block))
    padded = [image[i] + pads[i] + pads[i + nd] for i in range(nd)]
    counts = [(padded[i] - (block[i] - 1) * dilations[i] - 1) // strides[i] + 1
              for i in range(nd)]
    columns = xp.reshape(x, (n, c, *block, *counts))
    flat = xp.zeros((n * c * int(np.prod(padded)),), dtype=x.dtype)
    base = (np.arange(n * c) * int(np.prod(padded))).reshape(n, c, *[1] * (2 * nd))
    linear = base
    for i in range(nd):
        pos = (np.arange(block[i]).reshape([-1 if j == i else 1 for j in range(nd)] + [1] * nd)
               * dilations[i] + np.arange(counts[i]).reshape(
                   [1] * nd + [-1 if j == i else 1 for j in range(nd)]) * strides[i])
        linear = linear + pos * int(np.prod(padded[i + 1:]))
    flat = ctx.k.scatter_nd(flat, xp.asarray(np.broadcast_to(linear, (n, c, *block, *counts))
                                              .reshape(-1, 1)), xp.reshape(columns, (-1,)),
                            "add")
    result = xp.reshape(flat, (n, c, *padded))
    crop = (slice(None), slice(None), *(slice(pads[i], pads[i] + image[i]) for i in range(nd)))
    return result[crop]
