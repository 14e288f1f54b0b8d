/** The marks drawn over the map on a 2-D canvas: the user's placed images (stars) and a decoded spot (a cross). */
import type { Scale } from "./dom";

export interface Mark {
  x: number;
  y: number;
  label: string;
  title?: string;
}

/** Draw ``marks`` and ``spot`` (data coordinates, mapped to pixels by ``xs``, ``ys``) on ``ctx``. */
export function paintMarks(
  ctx: CanvasRenderingContext2D,
  xs: Scale,
  ys: Scale,
  marks: Mark[],
  spot: [number, number] | null,
): void {
  ctx.font = "bold 12px sans-serif";
  ctx.textAlign = "center";
  for (const mark of marks) {
    const cx = xs(mark.x);
    const cy = ys(mark.y);
    star(ctx, cx, cy, 9, 4);
    ctx.fillStyle = "#ffd60a";
    ctx.strokeStyle = "#222";
    ctx.lineWidth = 1.5;
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.fillText(mark.label, cx, cy - 13);
  }
  if (spot) {
    const cx = xs(spot[0]);
    const cy = ys(spot[1]);
    ctx.strokeStyle = "#d62728";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(cx - 7, cy - 7);
    ctx.lineTo(cx + 7, cy + 7);
    ctx.moveTo(cx + 7, cy - 7);
    ctx.lineTo(cx - 7, cy + 7);
    ctx.stroke();
  }
}

function star(ctx: CanvasRenderingContext2D, cx: number, cy: number, outer: number, inner: number): void {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const r = k % 2 ? inner : outer;
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    const x = cx + r * Math.cos(a);
    const y = cy + r * Math.sin(a);
    if (k) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
  }
  ctx.closePath();
}
