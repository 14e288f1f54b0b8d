// Builds ../vqviz/web/static/map.js (one ES module, dependencies bundled) and map.css.
// Deterministic: no timestamps, no hashes in names, no source maps; `npm ci && npm run build` twice
// gives the same bytes.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = new URL("../vqviz/web/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  outfile: `${out}map.js`,
  logLevel: "info",
});
copyFileSync("src/map.css", `${out}map.css`);
// onnxruntime-web's WebAssembly build, imported by decoder.ts only when a page decodes in the browser:
// its module, the Emscripten glue it imports, and the binary (single-threaded use; no JSEP, no WebGPU)
const ort = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).pathname;
mkdirSync(`${out}ort`, { recursive: true });
for (const name of ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"])
  copyFileSync(`${ort}${name}`, `${out}ort/${name}`);
