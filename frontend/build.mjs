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
