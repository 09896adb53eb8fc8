// docfn's try-it page: a document in, a task run on this server, the page with the detected regions
// drawn over it beside the result as Markdown, the Server-Timing phases, and the JSON to download.
// Plain DOM, no dependencies: every result string reaches the page as text, never as markup.
// "Read in this browser" loads docfn's browser OCR (web/ in the repository, built into /try/ocr/):
// the OCR pack runs here on onnxruntime-web and the image is never sent anywhere. The page's
// <body> names where those assets and the pack are (`docfn export-web` writes a static copy with
// data-static, where only that mode exists).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let chosen = null;

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadTasks() {
  const ready = await (await fetch("/readyz")).json();
  for (const name of Object.keys(ready.tasks)) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    $("task").append(option);
  }
  if ([...$("task").options].some((o) => o.value === "parse")) $("task").value = "parse";
}

function choose(file) {
  chosen = file || null;
  $("go").disabled = !chosen;
  status(chosen ? `${chosen.name} (${chosen.size.toLocaleString()} bytes)` : "");
}

// -- the result as Markdown ------------------------------------------------------------------------

function markdownOf(task, result, page) {
  if (task === "parse" || task === "table") return result.markdown || "";
  if (task === "ocr") return (result.pages.find((p) => p.page === page) || {text: ""}).text;
  if (task === "layout") {
    const regions = (result.pages.find((p) => p.page === page) || {regions: []}).regions;
    return regions.map((r) => `- ${r.order}. ${r.type} (${r.score.toFixed(2)})`).join("\n");
  }
  return result.markdown || result.text || "";
}

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

// An HTML table from a result, rebuilt from its cells' text: no attribute or tag but the table's own.
function safeTable(html) {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  const table = element("table");
  for (const row of parsed.querySelectorAll("tr")) {
    const tr = element("tr");
    for (const cell of row.querySelectorAll("td, th")) {
      const td = element(cell.tagName.toLowerCase(), cell.textContent);
      for (const span of ["rowspan", "colspan"]) {
        const value = parseInt(cell.getAttribute(span) || "1", 10);
        if (value > 1) td.setAttribute(span, String(value));
      }
      tr.append(td);
    }
    table.append(tr);
  }
  return table;
}

function pipeTable(lines) {
  const cells = (line) => line.replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
  const table = element("table");
  lines.filter((l) => !/^\|?\s*:?-{3,}/.test(l)).forEach((line, i) => {
    const tr = element("tr");
    for (const text of cells(line)) tr.append(element(i === 0 ? "th" : "td", text));
    table.append(tr);
  });
  return table;
}

function renderMarkdown(text, images) {
  const out = $("markdown");
  out.replaceChildren();
  for (const block of text.split(/\n\s*\n/)) {
    const trimmed = block.trim();
    const lines = trimmed.split("\n");
    let heading, picture;
    if (!trimmed || /^<!--.*-->$/s.test(trimmed)) continue;
    if (/^<table/i.test(trimmed)) out.append(safeTable(trimmed));
    else if ((heading = /^(#{1,6})\s+(.*)$/s.exec(trimmed))) out.append(element(`h${heading[1].length + 1}`, heading[2]));
    else if ((picture = /^!\[([^\]]*)\]\(([^)]+)\)$/.exec(trimmed))) {
      const source = images[picture[2]];
      if (source) {
        const img = element("img");
        img.src = `data:image/png;base64,${source}`;
        img.alt = picture[1];
        out.append(img);
      } else out.append(element("p", `[figure: ${picture[1] || picture[2]}]`));
    } else if (lines.every((l) => /^\s*[-*]\s+/.test(l))) {
      const list = element("ul");
      for (const line of lines) list.append(element("li", line.replace(/^\s*[-*]\s+/, "")));
      out.append(list);
    } else if (lines.length > 1 && lines.every((l) => l.trim().startsWith("|"))) out.append(pipeTable(lines));
    else out.append(element("p", trimmed));
  }
}

// -- the page with its regions ---------------------------------------------------------------------

// Boxes in the page's pixels, with a label: each task says where it found things its own way.
function boxesOf(task, result, page) {
  const onPage = (result.pages || []).find((p) => (p.page ?? p.page_idx + 1) === page);
  if (!onPage) return {size: null, boxes: []};
  const size = [onPage.width, onPage.height];
  if (task === "parse") {
    const [sx, sy] = [onPage.width / 1000, onPage.height / 1000]; // MinerU's 0-1000 grid
    const boxes = result.content_list
      .filter((b) => b.page_idx === page - 1 && b.bbox)
      .map((b) => ({bbox: [b.bbox[0] * sx, b.bbox[1] * sy, b.bbox[2] * sx, b.bbox[3] * sy], label: b.type}));
    return {size, boxes};
  }
  const items = onPage.regions || onPage.lines || onPage.cells || [];
  return {size, boxes: items.map((i) => ({bbox: i.bbox, label: i.type || "text"}))};
}

function drawRegions(size, boxes) {
  const svg = $("regions");
  svg.replaceChildren();
  if (!size) return;
  svg.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`);
  for (const {bbox, label} of boxes) {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", bbox[0]);
    rect.setAttribute("y", bbox[1]);
    rect.setAttribute("width", Math.max(1, bbox[2] - bbox[0]));
    rect.setAttribute("height", Math.max(1, bbox[3] - bbox[1]));
    rect.setAttribute("class", label);
    const title = document.createElementNS(SVG, "title");
    title.textContent = label;
    rect.append(title);
    svg.append(rect);
  }
}

async function showPage(file, page) {
  // The server renders the page as the tasks saw it, so the boxes' pixels line up with it.
  const response = await fetch(`/try/page?page=${page}`, {method: "POST", body: file, headers: {"content-type": file.type || "application/octet-stream"}});
  if (!response.ok) throw new Error((await response.json()).error.message);
  const image = $("page-image");
  const loaded = new Promise((resolve) => { image.onload = resolve; });
  image.src = URL.createObjectURL(await response.blob());
  await loaded;
}

// -- timings and download --------------------------------------------------------------------------

function showTimings(header) {
  const body = $("timings").tBodies[0];
  body.replaceChildren();
  for (const entry of (header || "").split(",")) {
    const match = /^\s*([\w-]+);dur=([\d.]+)/.exec(entry);
    if (!match) continue;
    const row = element("tr");
    row.append(element("td", match[1]), element("td", Number(match[2]).toFixed(1)));
    body.append(row);
  }
}

function offerDownload(body, name) {
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([JSON.stringify(body, null, 2)], {type: "application/json"}));
  link.download = name.replace(/\.[^.]+$/, "") + `.${body.task}.json`;
  link.hidden = false;
}

// -- reading in this browser -----------------------------------------------------------------------

let browserOcr = null;

async function runInBrowser(file) {
  const where = document.body.dataset;
  const assets = new URL(where.ocrAssets, document.baseURI).href;
  const ocr = await import(`${assets}docfn-ocr.js`);
  status(`decoding ${file.name} in this browser…`);
  const image = await ocr.decodeImage(file); // refuses a page past the memory budget, naming it
  if (!browserOcr) {
    const pack = new URL(where.ocrPack, document.baseURI).href;
    browserOcr = await ocr.BrowserOcr.create(pack, {wasmPaths: assets, onProgress: (text) => status(text)});
  }
  status(`reading ${file.name} in this browser…`);
  const started = performance.now();
  const read = await browserOcr.read(image);
  const elapsed = performance.now() - started;
  const shown = $("page-image");
  const loaded = new Promise((resolve) => { shown.onload = resolve; });
  if (shown.src.startsWith("blob:")) URL.revokeObjectURL(shown.src);
  shown.src = URL.createObjectURL(file);
  await loaded;
  drawRegions([read.width, read.height], read.lines.map((line) => ({bbox: line.bbox, label: "text"})));
  renderMarkdown(read.text, {});
  showTimings(`browser_read;dur=${elapsed.toFixed(1)}`);
  const body = {task: "ocr", where: "browser", pack: browserOcr.packId, threads: browserOcr.threads,
    cross_origin_isolated: browserOcr.crossOriginIsolated, read_ms: elapsed, result: {pages: [{page: 1, ...read}], text: read.text}};
  window.docfnBrowserResult = body;
  document.body.dataset.ocrThreads = String(browserOcr.threads);
  offerDownload(body, file.name);
  status(`ocr in this browser: ${read.lines.length} lines (${browserOcr.packId}, ${browserOcr.threads} thread${browserOcr.threads > 1 ? "s" : ""}, ${Math.round(elapsed)} ms)`);
}

// One read at a time: the button is off while it runs, and the page's state says how it ended.
async function busy(work) {
  $("go").disabled = true;
  try {
    await work();
    document.body.dataset.state = "done";
  } catch (error) {
    status(error.message, true);
    document.body.dataset.state = "error";
  } finally {
    $("go").disabled = false;
  }
}

async function runOnServer(file) {
  const task = $("task").value;
  const page = Math.max(1, parseInt($("page").value, 10) || 1);
  const query = new URLSearchParams({pages: String(page)});
  if (task === "parse") query.set("images", "base64");
  status(`running ${task} on ${file.name}, page ${page}…`);
  const response = await fetch(`/v1/${task}?${query}`, {method: "POST", body: file, headers: {"content-type": file.type || "application/octet-stream"}});
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.error.message} (${body.error.code})`);
  await showPage(file, page);
  const {size, boxes} = boxesOf(task, body.result, page);
  drawRegions(size, boxes);
  renderMarkdown(markdownOf(task, body.result, page), body.result.images || {});
  showTimings(response.headers.get("server-timing"));
  offerDownload(body, file.name);
  status(`${task}: ${boxes.length} regions on page ${page}${body.cached ? " (from the cache)" : ""}`);
}

async function run(event) {
  event.preventDefault();
  if (!chosen) return;
  const file = chosen;
  await busy(() => ($("local").checked ? runInBrowser(file) : runOnServer(file)));
}

$("file").addEventListener("change", () => choose($("file").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  choose(e.dataTransfer.files[0]);
});
$("run").addEventListener("submit", run);
if (document.body.dataset.noBrowserOcr !== undefined) { // this function serves no browser OCR
  $("local").closest("label").hidden = true;
}
if (document.body.dataset.static !== undefined) { // a static copy: no server, only this browser reads
  $("local").checked = $("local").disabled = true;
  for (const node of document.querySelectorAll(".server-only")) node.hidden = true;
} else {
  loadTasks().catch((error) => status(`cannot list tasks: ${error.message}`, true));
}
