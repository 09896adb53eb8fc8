// The image operations the OCR pipeline needs, ported from docfn.core.imaging (same arithmetic:
// 8-bit linear taps rounded after each pass, the same band order, the same hull and calipers), so
// the browser sees the same tensors and boxes as the server. Images are {data, width, height,
// channels} with interleaved uint8 data.

// numpy's rint: half to even.
export function rint(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function linearTaps(nIn, nOut) {
  const first = new Int32Array(nOut);
  const second = new Int32Array(nOut);
  const weight = new Uint16Array(nOut);
  const scale = nIn / nOut;
  for (let i = 0; i < nOut; i++) {
    const position = (i + 0.5) * scale - 0.5;
    let f = Math.floor(position);
    let frac = position - f;
    if (f < 0) { f = 0; frac = 0; }
    if (f >= nIn - 1) { f = nIn - 1; frac = 0; }
    first[i] = f;
    second[i] = Math.min(f + 1, nIn - 1);
    weight[i] = rint(frac * 256);
  }
  return {first, second, weight};
}

const lerp = (a, b, w) => ((a * (256 - w) + b * w + 128) >> 8);

// Rows [r0, r1) of source `src` (flat, rowLen = w*c) resampled along x.
function horizontal(src, rows, rowLen, taps, channels, outW) {
  const out = new Uint8Array(rows * outW * channels);
  for (let r = 0; r < rows; r++) {
    const base = r * rowLen;
    const obase = r * outW * channels;
    for (let x = 0; x < outW; x++) {
      const a = base + taps.first[x] * channels;
      const b = base + taps.second[x] * channels;
      const w = taps.weight[x];
      for (let c = 0; c < channels; c++) out[obase + x * channels + c] = lerp(src[a + c], src[b + c], w);
    }
  }
  return out;
}

function verticalRows(src, rowLen, taps, y0, y1, rowOffset = 0) {
  const out = new Uint8Array((y1 - y0) * rowLen);
  for (let y = y0; y < y1; y++) {
    const a = (taps.first[y] - rowOffset) * rowLen;
    const b = (taps.second[y] - rowOffset) * rowLen;
    const w = taps.weight[y];
    const o = (y - y0) * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = lerp(src[a + i], src[b + i], w);
  }
  return out;
}

const BAND_BYTES = 1 << 20;

// docfn.core.imaging.resize_bilinear (antialias=False), band by band as the server does it: the
// order of the two passes (and so their rounding) follows the same per-band rule.
export function resizeBilinear(image, width, height) {
  const {data, width: srcW, height: srcH, channels} = image;
  if (srcW === width && srcH === height) return {data: data.slice(), width, height, channels};
  const rowLen = srcW * channels;
  const vertical = height !== srcH ? linearTaps(srcH, height) : null;
  const horiz = width !== srcW ? linearTaps(srcW, width) : null;
  const band = Math.max(16, Math.floor(BAND_BYTES / (2 * channels * Math.max(srcW, width))));
  const out = new Uint8Array(width * height * channels);
  const outRow = width * channels;
  for (let y = 0; y < height; y += band) {
    const y1 = Math.min(height, y + band);
    let rows;
    if (vertical === null) {
      rows = horiz ? horizontal(data.subarray(y * rowLen, y1 * rowLen), y1 - y, rowLen, horiz, channels, width)
        : data.subarray(y * rowLen, y1 * rowLen);
    } else if (horiz === null) {
      rows = verticalRows(data, rowLen, vertical, y, y1);
    } else {
      const lo = vertical.first[y];
      const hi = vertical.second[y1 - 1] + 1;
      if (hi - lo < y1 - y) { // enlarging: columns first, on the fewer source rows
        const source = horizontal(data.subarray(lo * rowLen, hi * rowLen), hi - lo, rowLen, horiz, channels, width);
        rows = verticalRows(source, outRow, vertical, y, y1, lo);
      } else {
        const bandRows = verticalRows(data, rowLen, vertical, y, y1);
        rows = horizontal(bandRows, y1 - y, rowLen, horiz, channels, width);
      }
    }
    out.set(rows, y * outRow);
  }
  return {data: out, width, height, channels};
}

// -- regions and hulls -------------------------------------------------------------------------------

// Andrew's monotone chain on points sorted by (x, y); counter-clockwise in image axes, no collinear points.
export function monotoneChain(points) {
  const seen = new Set();
  const unique = [];
  for (const p of points) {
    const key = `${p[0]},${p[1]}`;
    if (!seen.has(key)) { seen.add(key); unique.push(p); }
  }
  if (unique.length < 3) return unique;
  const chains = [];
  for (const sequence of [unique, [...unique].reverse()]) {
    const chain = [];
    for (const p of sequence) {
      while (chain.length >= 2) {
        const [ox, oy] = chain[chain.length - 2];
        const [ax, ay] = chain[chain.length - 1];
        if ((ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) > 0) break;
        chain.pop();
      }
      chain.push(p);
    }
    chains.push(chain.slice(0, -1));
  }
  return [...chains[0], ...chains[1]];
}

const byXY = (a, b) => (a[0] - b[0]) || (a[1] - b[1]);

// docfn.core.imaging.find_region_hulls: the convex hull of every 8-connected foreground region of a
// binary mask, the region whose first pixel comes last in raster order first.
export function findRegionHulls(mask, width, height) {
  const labels = new Int32Array(width * height).fill(-1);
  const regions = []; // per region: Map row -> [left, right]
  const stack = new Int32Array(width * height);
  for (let start = 0; start < width * height; start++) {
    if (!mask[start] || labels[start] !== -1) continue;
    const id = regions.length;
    const rows = new Map();
    let top = 0;
    stack[top++] = start;
    labels[start] = id;
    while (top > 0) {
      const p = stack[--top];
      const y = (p / width) | 0;
      const x = p - y * width;
      const span = rows.get(y);
      if (span === undefined) rows.set(y, [x, x]);
      else { if (x < span[0]) span[0] = x; if (x > span[1]) span[1] = x; }
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (mask[q] && labels[q] === -1) { labels[q] = id; stack[top++] = q; }
        }
      }
    }
    regions.push(rows);
  }
  const hulls = regions.map((rows) => {
    const points = [];
    for (const [y, [left, right]] of rows) {
      points.push([left, y]);
      points.push([right, y]);
    }
    points.sort(byXY);
    return monotoneChain(points);
  });
  return hulls.reverse();
}

// Rotating calipers over a counter-clockwise hull (docfn.core.imaging._calipers).
function calipers(hull) {
  const m = hull.length;
  const xs = [...hull.map((p) => p[0]), ...hull.map((p) => p[0])];
  const ys = [...hull.map((p) => p[1]), ...hull.map((p) => p[1])];
  let best = [0, 0, 1, 0, xs[0], ys[0]];
  let bestArea = Infinity;
  let k = 1, j = 1, far = 1;
  for (let i = 0; i < m; i++) {
    const x0 = xs[i], y0 = ys[i];
    const ex = xs[i + 1] - x0, ey = ys[i + 1] - y0;
    const length = Math.hypot(ex, ey);
    const ux = ex / length, uy = ey / length;
    k = Math.max(k, i + 1);
    while (k < i + m - 1 && (xs[k + 1] - xs[k]) * ux + (ys[k + 1] - ys[k]) * uy >= 0) k++;
    j = Math.max(j, k);
    while (j < i + m - 1 && (ys[j + 1] - ys[j]) * ux - (xs[j + 1] - xs[j]) * uy >= 0) j++;
    far = Math.max(far, j);
    while (far < i + m - 1 && (xs[far + 1] - xs[far]) * ux + (ys[far + 1] - ys[far]) * uy <= 0) far++;
    const hi = (xs[k] - x0) * ux + (ys[k] - y0) * uy;
    const lo = Math.min(0, (xs[far] - x0) * ux + (ys[far] - y0) * uy);
    const h = (ys[j] - y0) * ux - (xs[j] - x0) * uy;
    const area = (hi - lo) * h;
    if (area < bestArea) {
      bestArea = area;
      const midU = (hi + lo) / 2, midN = h / 2;
      best = [hi - lo, h, ux, uy, x0 + ux * midU - uy * midN, y0 + uy * midU + ux * midN];
    }
  }
  return best;
}

// docfn.core.imaging.min_area_rect: [[cx, cy], [w, h], angle in degrees, [0, 90)].
export function minAreaRect(points) {
  const hull = monotoneChain([...points].sort(byXY));
  if (hull.length === 0) return [[0, 0], [0, 0], 0];
  if (hull.length === 1) return [hull[0], [0, 0], 0];
  let w, h, ux, uy, cx, cy;
  if (hull.length === 2) {
    const [[x0, y0], [x1, y1]] = hull;
    const length = Math.hypot(x1 - x0, y1 - y0);
    [w, h, ux, uy, cx, cy] = [length, 0, (x1 - x0) / length, (y1 - y0) / length, (x0 + x1) / 2, (y0 + y1) / 2];
  } else {
    [w, h, ux, uy, cx, cy] = calipers(hull);
  }
  let angle = Math.atan2(uy, ux) * 180 / Math.PI;
  let quarter = Math.floor(angle / 90);
  angle -= 90 * quarter;
  if (angle >= 90) { angle = 0; quarter += 1; }
  if (((quarter % 2) + 2) % 2) [w, h] = [h, w];
  return [[cx, cy], [w, h], angle];
}

// docfn.core.imaging.box_points, float32 corners.
export function boxPoints([[cx, cy], [w, h], angle]) {
  const b = Math.cos(angle * Math.PI / 180) * 0.5;
  const a = Math.sin(angle * Math.PI / 180) * 0.5;
  const p0 = [cx - a * h - b * w, cy + b * h - a * w];
  const p1 = [cx + a * h - b * w, cy - b * h - a * w];
  const f = Math.fround;
  return [p0, p1, [2 * cx - p0[0], 2 * cy - p0[1]], [2 * cx - p1[0], 2 * cy - p1[1]]].map(([x, y]) => [f(x), f(y)]);
}

export function contourArea(points) {
  if (points.length < 3) return 0;
  let twice = 0;
  for (let i = 0; i < points.length; i++) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[(i + 1) % points.length];
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

export function arcLength(points) {
  if (points.length < 2) return 0;
  let total = 0;
  for (let i = 0; i < points.length; i++) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[(i + 1) % points.length];
    total += Math.hypot(x1 - x0, y1 - y0);
  }
  return total;
}

// A polygon (integer vertices) rasterised: its interior (pixel centres inside, even-odd) plus its
// 1-px outline, as Pillow's polygon fill and line draw it (to within an edge pixel).
function polygonMask(points, width, height) {
  const mask = new Uint8Array(width * height);
  const n = points.length;
  if (n > 2) {
    for (let y = 0; y < height; y++) {
      const xs = [];
      for (let i = 0; i < n; i++) {
        const [x0, y0] = points[i];
        const [x1, y1] = points[(i + 1) % n];
        if (y0 === y1) continue;
        const [ya, yb] = y0 < y1 ? [y0, y1] : [y1, y0];
        if (y < ya || y >= yb) continue;
        xs.push(x0 + (y - y0) * (x1 - x0) / (y1 - y0));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(width - 1, Math.floor(xs[k + 1] + 0.5));
        for (let x = from; x <= to; x++) mask[y * width + x] = 1;
      }
    }
  }
  for (let i = 0; i < n; i++) { // Bresenham outline
    let [x0, y0] = points[i];
    const [x1, y1] = points[(i + 1) % n];
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      if (x0 >= 0 && x0 < width && y0 >= 0 && y0 < height) mask[y0 * width + x0] = 1;
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x0 += sx; }
      if (e2 <= dx) { err += dx; y0 += sy; }
    }
  }
  return mask;
}

// docfn.core.imaging.polygon_mean: mean of a float map over a polygon's pixels.
export function polygonMean(values, width, height, polygon) {
  const xs = polygon.map((p) => p[0]), ys = polygon.map((p) => p[1]);
  const x0 = Math.min(Math.max(Math.floor(Math.min(...xs)), 0), width - 1);
  const x1 = Math.min(Math.max(Math.ceil(Math.max(...xs)), 0), width - 1);
  const y0 = Math.min(Math.max(Math.floor(Math.min(...ys)), 0), height - 1);
  const y1 = Math.min(Math.max(Math.ceil(Math.max(...ys)), 0), height - 1);
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const shifted = polygon.map(([x, y]) => [Math.trunc(x - x0), Math.trunc(y - y0)]);
  const mask = polygonMask(shifted, w, h);
  let sum = 0, count = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (mask[y * w + x]) { sum += values[(y + y0) * width + x + x0]; count++; }
    }
  }
  return count ? sum / count : 0;
}

// -- perspective crops ---------------------------------------------------------------------------------

function squareToQuad([[x0, y0], [x1, y1], [x2, y2], [x3, y3]]) {
  const sx = x0 - x1 + x2 - x3, sy = y0 - y1 + y2 - y3;
  if (sx === 0 && sy === 0) return [[x1 - x0, x3 - x0, x0], [y1 - y0, y3 - y0, y0], [0, 0, 1]];
  const dx1 = x1 - x2, dx2 = x3 - x2, dy1 = y1 - y2, dy2 = y3 - y2;
  const den = dx1 * dy2 - dx2 * dy1;
  if (den === 0) throw new Error("degenerate quadrilateral");
  const g = (sx * dy2 - dx2 * sy) / den, h = (dx1 * sy - sx * dy1) / den;
  return [[x1 - x0 + g * x1, x3 - x0 + h * x3, x0], [y1 - y0 + g * y1, y3 - y0 + h * y3, y0], [g, h, 1]];
}

function inverse3([[a, b, c], [d, e, f], [g, h, i]]) {
  const co = [e * i - f * h, f * g - d * i, d * h - e * g];
  const det = a * co[0] + b * co[1] + c * co[2];
  if (det === 0) throw new Error("singular homography");
  return [
    [co[0] / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [co[1] / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [co[2] / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}

function product3(m, n) {
  return [0, 1, 2].map((r) => [0, 1, 2].map((c) => m[r][0] * n[0][c] + m[r][1] * n[1][c] + m[r][2] * n[2][c]));
}

const normalised = (m) => m.map((row) => row.map((v) => v / m[2][2]));

// docfn.core.imaging.perspective_crop: the quad warped upright to width x height, bilinear, edges
// replicated; an integer translation is a plain copy, as on the server.
export function perspectiveCrop(image, quad, width, height) {
  const target = [[0, 0], [width, 0], [width, height], [0, height]];
  const matrix = normalised(product3(squareToQuad(target), inverse3(squareToQuad(quad))));
  const inv = normalised(inverse3(matrix));
  const [[a, b, tx], [c, d, ty], [g, h]] = inv;
  const {data, width: imgW, height: imgH, channels} = image;
  const out = new Uint8Array(width * height * channels);
  const x0 = Math.round(tx), y0 = Math.round(ty);
  const exact = Math.max(Math.abs(a - 1), Math.abs(b), Math.abs(c), Math.abs(d - 1), Math.abs(g), Math.abs(h),
    Math.abs(tx - x0), Math.abs(ty - y0)) < 1e-6;
  if (exact && x0 >= 0 && y0 >= 0 && x0 + width <= imgW && y0 + height <= imgH) {
    for (let y = 0; y < height; y++) {
      const src = ((y0 + y) * imgW + x0) * channels;
      out.set(data.subarray(src, src + width * channels), y * width * channels);
    }
    return {data: out, width, height, channels};
  }
  const clampX = (x) => Math.min(imgW - 1, Math.max(0, x));
  const clampY = (y) => Math.min(imgH - 1, Math.max(0, y));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const w = g * x + h * y + 1;
      const sx = (a * x + b * y + tx) / w, sy = (c * x + d * y + ty) / w;
      const fx = Math.floor(sx), fy = Math.floor(sy);
      const wx = sx - fx, wy = sy - fy;
      const xa = clampX(fx), xb = clampX(fx + 1), ya = clampY(fy), yb = clampY(fy + 1);
      for (let ch = 0; ch < channels; ch++) {
        const p00 = data[(ya * imgW + xa) * channels + ch], p01 = data[(ya * imgW + xb) * channels + ch];
        const p10 = data[(yb * imgW + xa) * channels + ch], p11 = data[(yb * imgW + xb) * channels + ch];
        const top = p00 + (p01 - p00) * wx, bottom = p10 + (p11 - p10) * wx;
        out[(y * width + x) * channels + ch] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
  return {data: out, width, height, channels};
}

// numpy's rot90 (counter-clockwise).
export function rot90(image) {
  const {data, width, height, channels} = image;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < width; i++) {
    for (let j = 0; j < height; j++) {
      const src = (j * width + (width - 1 - i)) * channels;
      const dst = (i * height + j) * channels;
      for (let c = 0; c < channels; c++) out[dst + c] = data[src + c];
    }
  }
  return {data: out, width: height, height: width, channels};
}
