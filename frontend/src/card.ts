/** The hover card's content: a point's fields as text, and its thumbnail cut from the atlas. */
import type { Payload } from "./payload";

/** "#row", then "name: value" for each of ``fields`` the payload has (and a note when the
 * thumbnails are the images shrunk). */
export function cardLines(p: Payload, row: number, fields: string[]): string[] {
  const lines = [`#${row.toLocaleString()}`];
  const shrunk = p.header.atlas?.shrunk ?? 1;
  if (shrunk > 1) lines.push(`(the image at 1/${shrunk} of its size)`);
  for (const name of fields) {
    const f = p.fields.get(name);
    if (!f) continue;
    const v = f.codes[row];
    const r = f.header.range ?? [0, 1];
    const shown = f.header.kind === "continuous" ? (r[0] + Number(v) * (r[1] - r[0])).toPrecision(3) : f.header.names[v] ?? v;
    lines.push(`${name}: ${shown}`);
  }
  return lines;
}

/** Draw the thumbnail of ``row`` on ``canvas``, enlarged ``scale`` times (at least ``least`` pixels), pixelated. */
export function drawThumbnail(
  canvas: HTMLCanvasElement,
  atlas: ImageBitmap,
  p: Payload,
  row: number,
  scale: number,
  least: number,
): void {
  const a = p.header.atlas!;
  const [tw, th] = a.thumb;
  const k = Math.max(scale, Math.ceil(least / Math.max(tw, th)));
  if (canvas.width !== tw * k) canvas.width = tw * k;
  if (canvas.height !== th * k) canvas.height = th * k;
  const cell = p.thumb ? p.thumb[row] : row;
  const ctx = canvas.getContext("2d")!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(atlas, (cell % a.cols) * tw, Math.floor(cell / a.cols) * th, tw, th, 0, 0, tw * k, th * k);
}
