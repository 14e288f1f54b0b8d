/**
 * The latent behind any spot of the map, computed in the browser as the server computes it for a
 * click (vqviz.analysis.placement.MapModel.spot):
 *  - PCA: its exact inverse, z = (xy + offset) C + mean, cut to the latent's d;
 *  - otherwise: the convex mix of the latents of the k nearest map points, weighted by the inverse of
 *    their squared distance on the map (vqviz.projection.interpolate), over the map's own points and
 *    latents (a blob sent when decoding under the cursor is turned on).
 * Sums are in float64, and the spot is rounded to float32 first, as the server rounds a click.
 */
import { getBlob } from "./blobs";

export type Inverse =
  | { kind: "pca"; mean: number[]; components: number[][]; offset: [number, number]; d: number; how: string }
  | { kind: "mix"; latents: string; k: number; how: string };

export interface Spot {
  xy: [number, number];
  latent: Float32Array;
  rows: number[]; // the map points mixed (none for PCA)
  weights: number[];
}

export class SpotLatents {
  private xy: Float32Array | null = null;
  private z: Float32Array | null = null;
  private d = 0;

  private constructor(readonly inverse: Inverse) {}

  static async open(inverse: Inverse): Promise<SpotLatents> {
    const s = new SpotLatents(inverse);
    if (inverse.kind === "mix") {
      const blob = await getBlob(inverse.latents);
      const n = blob.header.n as number;
      s.d = blob.header.d as number;
      const body = blob.body;
      s.xy = new Float32Array(body.buffer, body.byteOffset, 2 * n);
      s.z = new Float32Array(body.buffer, body.byteOffset + 8 * n, n * s.d);
    }
    return s;
  }

  /** The map points a spot is mixed from (x0, y0, x1, ...), as the server sent them; null for PCA. */
  points(): Float32Array | null {
    return this.xy;
  }

  /** The latent behind data coordinates (x, y). */
  at(x: number, y: number): Spot {
    const px = Math.fround(x);
    const py = Math.fround(y);
    const inv = this.inverse;
    if (inv.kind === "pca") {
      const u = px + inv.offset[0];
      const v = py + inv.offset[1];
      const z = new Float32Array(inv.d);
      for (let j = 0; j < inv.d; j++) z[j] = u * inv.components[0][j] + v * inv.components[1][j] + inv.mean[j];
      return { xy: [px, py], latent: z, rows: [], weights: [] };
    }
    const xy = this.xy!;
    const n = xy.length / 2;
    const k = Math.max(1, Math.min(inv.k, n));
    // the k smallest squared distances, ties to the lower row (a stable sort's first k)
    const rows: number[] = [];
    const d2s: number[] = [];
    for (let i = 0; i < n; i++) {
      const dx = px - xy[2 * i];
      const dy = py - xy[2 * i + 1];
      const d2 = dx * dx + dy * dy;
      if (rows.length === k && d2 >= d2s[k - 1]) continue;
      let at = rows.length === k ? k - 1 : rows.length;
      while (at > 0 && d2s[at - 1] > d2) at--;
      rows.splice(at, 0, i);
      d2s.splice(at, 0, d2);
      if (rows.length > k) {
        rows.pop();
        d2s.pop();
      }
    }
    // exactly on a map point: that point's latent
    const weights = d2s[0] === 0 ? d2s.map((_, j) => (j === 0 ? 1 : 0)) : d2s.map((d2) => 1 / d2);
    const total = weights.reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) weights[j] /= total;
    const d = this.d;
    const acc = new Float64Array(d);
    const z = this.z!;
    for (let j = 0; j < k; j++) {
      const base = rows[j] * d;
      for (let t = 0; t < d; t++) acc[t] += weights[j] * z[base + t];
    }
    return { xy: [px, py], latent: Float32Array.from(acc), rows, weights };
  }
}
