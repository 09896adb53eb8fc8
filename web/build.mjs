// Builds docfn's browser OCR into static assets the function serves at /try/ocr/ (and
// `docfn export-web` copies): one ES module (our pipeline + onnxruntime-web's WASM API +
// clipper-lib, bundled by esbuild) and onnxruntime-web's SIMD WASM runtime, from node_modules as
// package-lock.json pins them. Run by scripts/setup and the image build: `npm ci && npm run build`.
import {build} from "esbuild";
import {copyFileSync, mkdirSync, rmSync, writeFileSync, readFileSync} from "node:fs";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, "..", "functions", "docfn", "adapters", "http", "web", "ocr");
rmSync(out, {recursive: true, force: true});
mkdirSync(out, {recursive: true});
await build({
  entryPoints: [join(here, "src", "ocr.js")],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  outfile: join(out, "docfn-ocr.js"),
  // onnxruntime-web loads its WASM glue by a dynamic import from env.wasm.wasmPaths at run time.
  external: ["*.mjs"],
  legalComments: "linked",
  logLevel: "warning",
});
const dist = join(here, "node_modules", "onnxruntime-web", "dist");
for (const name of ["ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"]) copyFileSync(join(dist, name), join(out, name));
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const versions = Object.fromEntries(["onnxruntime-web", "clipper-lib", "esbuild"].map((n) => [n, lock.packages[`node_modules/${n}`].version]));
writeFileSync(join(out, "BUILD.json"), JSON.stringify({built_by: "web/build.mjs", versions}, null, 2) + "\n");
console.log(`built ${out}`);
