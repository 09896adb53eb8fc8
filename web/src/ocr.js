// docfn's OCR pipeline in the browser: the pack's DB detector and CTC recogniser on onnxruntime-web
// (WASM), with the pre- and post-processing of docfn.tasks.ocr (detect.py, recognize.py, engine.py)
// ported line for line: same resize, same normalisation, DB boxes with the polygon offset (unclip,
// Clipper 6.4.2 as pyclipper), CTC decoding, reading order.
import * as ort from "onnxruntime-web/wasm";
import ClipperLib from "clipper-lib";
import {
  arcLength, boxPoints, contourArea, findRegionHulls, minAreaRect, perspectiveCrop, polygonMean,
  resizeBilinear, rint, rot90,
} from "./imaging.js";

const f32 = Math.fround;
const MEAN = [0.485, 0.456, 0.406].map(f32);
const STD = [0.229, 0.224, 0.225].map(f32);
const SCALE = STD.map((s) => f32(1 / f32(255 * s)));
const OFFSET = MEAN.map((m, i) => f32(m / STD[i]));

// The pages a browser tab is trusted with: past this the decoded page, the detector's input and
// its probability map would exceed the memory budget of a tab (a few hundred MB), so it is refused.
export const MAX_PAGE_PIXELS = 40_000_000;

export const DET_DEFAULTS = {
  limit_side_len: 736, limit_type: "min", max_side_len: 0, thresh: 0.2, box_thresh: 0.4,
  unclip_ratio: 1.4, max_candidates: 3000, min_size: 3,
};

// -- environment ---------------------------------------------------------------------------------------

// A minimal module using one SIMD instruction (i8x16.splat... v128): validates only with SIMD.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

export function wasmSupport() {
  if (typeof WebAssembly !== "object") return {wasm: false, simd: false};
  return {wasm: true, simd: WebAssembly.validate(SIMD_PROBE)};
}

// WASM threads need SharedArrayBuffer, which a browser gives only a cross-origin isolated page
// (served with COOP/COEP): there up to 4 threads, elsewhere one.
export function wasmThreads() {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4));
}

// onnxruntime-web's threads are module workers loading its glue script (ort-wasm-simd-threaded.mjs).
// On an isolated page the browser refuses that script unless it carries a COEP header of its own
// (net::ERR_BLOCKED_BY_RESPONSE in Chromium), and the runtime then waits for its workers forever:
// session creation hangs with no error. So threads only when the script says it may be embedded.
export async function workerScriptAllowed(scriptUrl) {
  try {
    const response = await fetch(scriptUrl, {credentials: "same-origin"});
    const policy = (response.headers.get("cross-origin-embedder-policy") || "").trim().toLowerCase();
    return response.ok && (policy === "require-corp" || policy === "credentialless");
  } catch {
    return false;
  }
}

// -- pack ------------------------------------------------------------------------------------------------

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Python's str.splitlines: every line break it knows, no empty line after a final break.
function splitLines(text) {
  const lines = text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

// The pack's manifest and every file it lists for the detector, recogniser and dictionary, each
// checked against its sha256 and size before use.
export async function fetchPack(base, onProgress = () => {}) {
  const root = base.endsWith("/") ? base : base + "/";
  const response = await fetch(root + "manifest.json");
  if (!response.ok) throw new Error(`cannot fetch the OCR pack's manifest (${response.status})`);
  const manifest = await response.json();
  const files = {};
  for (const role of ["det", "rec", "rec_dict"]) {
    const entry = manifest.files.find((f) => f.role === role);
    if (!entry) throw new Error(`the pack ${manifest.name}/${manifest.version} has no ${role} file`);
    onProgress(`fetching ${entry.path} (${entry.size.toLocaleString()} bytes)`);
    const file = await fetch(root + entry.path);
    if (!file.ok) throw new Error(`cannot fetch ${entry.path} (${file.status})`);
    const buffer = await file.arrayBuffer();
    const digest = await sha256Hex(buffer);
    if (digest !== entry.sha256 || buffer.byteLength !== entry.size) {
      throw new Error(`pack file ${entry.path} failed verification: sha256 ${digest}, expected ${entry.sha256}`);
    }
    files[role] = buffer;
  }
  return {manifest, files};
}

// -- the engine ----------------------------------------------------------------------------------------------

export class BrowserOcr {
  static async create(packBase, {wasmPaths, onProgress = () => {}} = {}) {
    const support = wasmSupport();
    if (!support.wasm) throw new Error("this browser has no WebAssembly: it cannot read pages itself");
    if (!support.simd) {
      throw new Error("this browser has no WebAssembly SIMD, which onnxruntime-web needs: it cannot read pages itself (use the server)");
    }
    if (wasmPaths) ort.env.wasm.wasmPaths = wasmPaths;
    let threads = wasmThreads();
    if (threads > 1 && wasmPaths && !(await workerScriptAllowed(`${wasmPaths}ort-wasm-simd-threaded.mjs`))) {
      onProgress("this host sends cross-origin isolation for the page but not for ort-wasm-simd-threaded.mjs: reading on one thread");
      threads = 1;
    }
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    const {manifest, files} = await fetchPack(packBase, onProgress);
    onProgress("creating the ONNX Runtime sessions");
    const options = {executionProviders: ["wasm"], graphOptimizationLevel: "all"};
    const det = await ort.InferenceSession.create(new Uint8Array(files.det), options);
    const rec = await ort.InferenceSession.create(new Uint8Array(files.rec), options);
    const text = new TextDecoder("utf-8").decode(files.rec_dict);
    const characters = ["<blank>", ...splitLines(text), " "];
    return new BrowserOcr(manifest, det, rec, characters, threads);
  }

  constructor(manifest, det, rec, characters, threads) {
    this.manifest = manifest;
    this.packId = `${manifest.name}/${manifest.version}`;
    this.det = det;
    this.rec = rec;
    this.characters = characters;
    this.threads = threads;
    this.crossOriginIsolated = globalThis.crossOriginIsolated === true;
    this.detConfig = {...DET_DEFAULTS, ...((manifest.config || {}).det || {})};
    this.recHeight = ((manifest.config || {}).rec || {}).height || 48;
  }

  // image: {data: RGBA or RGB uint8, width, height, channels}. Returns the server's page fields.
  async read(image, {minConfidence = 0.5} = {}) {
    if (image.width * image.height > MAX_PAGE_PIXELS) {
      throw new Error(pageTooLarge(image.width, image.height));
    }
    const started = performance.now();
    const bgr = toBgr(image);
    const quads = await this.detect(bgr);
    const detected = performance.now();
    const lines = [];
    for (const quad of quads) {
      const [text, confidence] = await this.recognise(cropQuad(bgr, quad));
      if (text.trim() && confidence >= minConfidence) lines.push({text, confidence, polygon: quad});
    }
    const timings = {detect: detected - started, recognise: performance.now() - detected};
    const ordered = orderLines(lines);
    return {
      width: image.width,
      height: image.height,
      text_source: "ocr",
      lines: ordered.map((line) => ({
        text: line.text,
        confidence: round(line.confidence, 4),
        polygon: line.polygon.map(([x, y]) => [round(x, 1), round(y, 1)]),
        bbox: bboxOf(line.polygon).map((v) => round(v, 1)),
      })),
      text: pageText(ordered),
      timings_ms: {detect: round(timings.detect, 1), recognise: round(timings.recognise, 1)},
    };
  }

  async detect(bgr) {
    const cfg = this.detConfig;
    const resized = resizeForDetection(bgr, cfg);
    const {width: w, height: h, data} = resized;
    const tensor = new Float32Array(3 * w * h);
    for (let c = 0; c < 3; c++) {
      const plane = c * w * h;
      for (let i = 0; i < w * h; i++) tensor[plane + i] = f32(data[i * 3 + c] * SCALE[c]) - OFFSET[c];
    }
    const feeds = {[this.det.inputNames[0]]: new ort.Tensor("float32", tensor, [1, 3, h, w])};
    const output = (await this.det.run(feeds))[this.det.outputNames[0]];
    const [mapH, mapW] = output.dims.slice(-2);
    return boxesFromMap(output.data, mapW, mapH, bgr.width, bgr.height, cfg);
  }

  async recognise(crop) {
    const height = this.recHeight;
    let width = Math.ceil(height * crop.width / Math.max(crop.height, 1));
    width = Math.min(Math.max(width, 1), 3200);
    const resized = resizeBilinear(crop, width, height);
    const total = Math.max(width + 24, 320);
    const tensor = new Float32Array(3 * height * total);
    const k = f32(2 / 255);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < height; y++) {
        const row = (c * height + y) * total;
        for (let x = 0; x < width; x++) tensor[row + x] = f32(resized.data[(y * width + x) * 3 + c] * k) - 1;
      }
    }
    const feeds = {[this.rec.inputNames[0]]: new ort.Tensor("float32", tensor, [1, 3, height, total])};
    const output = (await this.rec.run(feeds))[this.rec.outputNames[0]];
    const [steps, classes] = output.dims.slice(-2);
    if (classes !== this.characters.length) {
      throw new Error(`recogniser predicts ${classes} classes but the dictionary gives ${this.characters.length}`);
    }
    return ctcDecode(output.data, steps, classes, this.characters);
  }
}

export function pageTooLarge(width, height) {
  return `this page is ${width} x ${height} px (${(width * height / 1e6).toFixed(1)} MP): reading in this browser is limited to ${MAX_PAGE_PIXELS / 1e6} MP per page (the tab's memory budget); use the server, or a smaller image`;
}

const round = (value, digits) => {
  const scale = 10 ** digits;
  return rint(value * scale) / scale;
};

function toBgr(image) {
  const {data, width, height, channels} = image;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    out[i * 3] = data[j + 2];
    out[i * 3 + 1] = data[j + 1];
    out[i * 3 + 2] = data[j];
  }
  return {data: out, width, height, channels: 3};
}

// detect.py _resize_for_detection
function resizeForDetection(image, cfg) {
  const {width, height} = image;
  let ratio = 1;
  if (cfg.limit_type === "max" && Math.max(height, width) > cfg.limit_side_len) {
    ratio = cfg.limit_side_len / Math.max(height, width);
  } else if (cfg.limit_type === "min" && Math.min(height, width) < cfg.limit_side_len) {
    ratio = cfg.limit_side_len / Math.min(height, width);
  } else if (cfg.limit_type === "min" && cfg.max_side_len > 0 && cfg.max_side_len < Math.max(height, width)) {
    ratio = cfg.max_side_len / Math.max(height, width);
  }
  const newH = Math.max(32, Math.trunc(rint(height * ratio / 32) * 32));
  const newW = Math.max(32, Math.trunc(rint(width * ratio / 32) * 32));
  return resizeBilinear(image, newW, newH);
}

// detect.py _min_area_box: the rectangle's corners top-left, top-right, bottom-right, bottom-left.
function minAreaBox(points) {
  const rect = minAreaRect(points);
  const corners = boxPoints(rect).sort((a, b) => a[0] - b[0]);
  const left = corners.slice(0, 2).sort((a, b) => a[1] - b[1]);
  const right = corners.slice(2).sort((a, b) => a[1] - b[1]);
  return [[left[0], right[0], right[1], left[1]], Math.min(rect[1][0], rect[1][1])];
}

// detect.py _unclip: grow the text kernel by area * ratio / perimeter (Clipper, round joins).
function unclip(box, ratio) {
  const area = contourArea(box);
  const perimeter = arcLength(box);
  if (perimeter === 0) return null;
  const distance = area * ratio / perimeter;
  const offset = new ClipperLib.ClipperOffset(2.0, 0.25);
  offset.AddPath(box.map(([x, y]) => ({X: Math.trunc(x), Y: Math.trunc(y)})), ClipperLib.JoinType.jtRound, ClipperLib.EndType.etClosedPolygon);
  const expanded = [];
  offset.Execute(expanded, distance);
  if (expanded.length !== 1) return null;
  return expanded[0].map((p) => [f32(p.X), f32(p.Y)]);
}

// detect.py _boxes_from_map
export function boxesFromMap(probability, mapW, mapH, width, height, cfg) {
  const bitmap = new Uint8Array(mapW * mapH);
  const thresh = f32(cfg.thresh);
  for (let i = 0; i < bitmap.length; i++) bitmap[i] = probability[i] > thresh ? 1 : 0;
  const hulls = findRegionHulls(bitmap, mapW, mapH);
  const boxes = [];
  for (const contour of hulls.slice(0, cfg.max_candidates)) {
    const [points, shortSide] = minAreaBox(contour);
    if (shortSide < cfg.min_size) continue;
    if (polygonMean(probability, mapW, mapH, points) < cfg.box_thresh) continue;
    const expanded = unclip(points, cfg.unclip_ratio);
    if (expanded === null) continue;
    const [box, side] = minAreaBox(expanded);
    if (side < cfg.min_size + 2) continue;
    const scaled = box.map(([x, y]) => [
      Math.min(Math.max(rint(f32(f32(x / mapW) * width)), 0), width - 1),
      Math.min(Math.max(rint(f32(f32(y / mapH) * height)), 0), height - 1),
    ]);
    const norm = (p, q) => f32(Math.hypot(p[0] - q[0], p[1] - q[1]));
    if (norm(scaled[0], scaled[1]) > 3 && norm(scaled[0], scaled[3]) > 3) boxes.push(scaled);
  }
  return boxes;
}

// engine.py crop_quad
function cropQuad(image, quad) {
  const norm = (p, q) => f32(Math.hypot(p[0] - q[0], p[1] - q[1]));
  let width = Math.trunc(Math.max(norm(quad[0], quad[1]), norm(quad[2], quad[3])));
  let height = Math.trunc(Math.max(norm(quad[0], quad[3]), norm(quad[1], quad[2])));
  width = Math.max(width, 1);
  height = Math.max(height, 1);
  let crop = perspectiveCrop(image, quad, width, height);
  if (height / width >= 1.5) crop = rot90(crop);
  return crop;
}

// recognize.py _decode: greedy CTC, repeats collapsed, blanks (index 0) dropped.
export function ctcDecode(probabilities, steps, classes, characters) {
  let text = "";
  let sum = 0;
  let count = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const row = t * classes;
    let best = 0;
    let score = probabilities[row];
    for (let c = 1; c < classes; c++) {
      if (probabilities[row + c] > score) { score = probabilities[row + c]; best = c; }
    }
    if (best !== 0 && best !== previous) {
      text += characters[best];
      sum += score;
      count++;
    }
    previous = best;
  }
  return count ? [text, sum / count] : ["", 0];
}

function bboxOf(polygon) {
  const xs = polygon.map((p) => p[0]), ys = polygon.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

// engine.py order_lines (geometry.rows_by_vertical_overlap): rows top-down, left to right in a row.
export function orderLines(lines) {
  const withBox = lines.map((line) => ({...line, bbox: bboxOf(line.polygon)}));
  withBox.sort((a, b) => (a.bbox[1] - b.bbox[1]) || (a.bbox[0] - b.bbox[0]));
  const rows = [];
  let top = 0, bottom = 0;
  for (const line of withBox) {
    const centre = (line.bbox[1] + line.bbox[3]) / 2;
    if (rows.length && top <= centre && centre <= bottom) {
      rows[rows.length - 1].push(line);
      top = Math.min(top, line.bbox[1]);
      bottom = Math.max(bottom, line.bbox[3]);
      continue;
    }
    rows.push([line]);
    [top, bottom] = [line.bbox[1], line.bbox[3]];
  }
  return rows.flatMap((row) => [...row].sort((a, b) => a.bbox[0] - b.bbox[0]));
}

// engine.py page_text
export function pageText(lines) {
  let out = "";
  let previous = null;
  for (const line of lines) {
    if (previous !== null) {
      const middle = (previous.bbox[1] + previous.bbox[3]) / 2;
      out += line.bbox[1] < middle && middle < line.bbox[3] ? " " : "\n";
    }
    out += line.text;
    previous = line;
  }
  return out;
}

// -- reading a file ------------------------------------------------------------------------------------------

// Width and height from a PNG's IHDR or a JPEG's SOF header, without decoding (null if neither).
export function headerSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && view.getUint32(0) === 0x89504e47) return [view.getUint32(16), view.getUint32(20)];
  if (bytes.length >= 4 && view.getUint16(0) === 0xffd8) {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      const length = view.getUint16(at + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [view.getUint16(at + 7), view.getUint16(at + 5)];
      }
      at += 2 + length;
    }
  }
  return null;
}

// A dropped image file decoded by the browser to RGBA pixels (no colour conversion), refused
// before decoding when its header says it is past the page budget.
export async function decodeImage(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length >= 4 && bytes[0] === 0x25 && bytes[1] === 0x50 && bytes[2] === 0x44 && bytes[3] === 0x46) {
    throw new Error("reading in this browser takes images (PNG, JPEG, WebP); PDFs are read by the server");
  }
  const size = headerSize(bytes);
  if (size && size[0] * size[1] > MAX_PAGE_PIXELS) throw new Error(pageTooLarge(size[0], size[1]));
  const bitmap = await createImageBitmap(new Blob([bytes]), {colorSpaceConversion: "none", premultiplyAlpha: "none"});
  if (bitmap.width * bitmap.height > MAX_PAGE_PIXELS) throw new Error(pageTooLarge(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  const pixels = context.getImageData(0, 0, bitmap.width, bitmap.height);
  return {data: pixels.data, width: bitmap.width, height: bitmap.height, channels: 4};
}
