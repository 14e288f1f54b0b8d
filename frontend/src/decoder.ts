/**
 * Decoding latents in the browser: a model's decoder as ONNX (exported by vqviz.export) run by
 * onnxruntime-web's WebAssembly build on one thread (Streamlit sends no COOP/COEP headers, so the
 * page cannot share memory with workers).
 *
 * The runtime (about 15 MB) ships beside this bundle, in ./ort/, and is imported only when a view
 * first needs a decoder: a page without one never fetches it, so a fresh tab's map is not slowed.
 */
import type * as OrtModule from "onnxruntime-web/wasm";
import { getBlob } from "./blobs";

type Ort = typeof OrtModule;

/** What a browser test or the benchmark reads (window.__vqvizDecode). */
export interface DecodeProbe {
  runtimeAskedAt: number | null; // performance.now() when the runtime was first imported
  runtimeReadyAt: number | null;
  decodes: number; // runs of any decoder
  lastRunMs: number | null; // the last run's time in the decoder
  error: string | null; // why decoding in this browser failed, if it did
}

declare global {
  interface Window {
    __vqvizDecode?: DecodeProbe;
  }
}

export const probe: DecodeProbe = (window.__vqvizDecode ??= {
  runtimeAskedAt: null,
  runtimeReadyAt: null,
  decodes: 0,
  lastRunMs: null,
  error: null,
});

/** Why this browser cannot decode (null when it can). */
export function unavailable(): string | null {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function")
    return "this browser has no WebAssembly";
  return null;
}

let runtime: Promise<Ort> | null = null;

function loadRuntime(): Promise<Ort> {
  if (!runtime) {
    probe.runtimeAskedAt = performance.now();
    const base = new URL("./ort/", import.meta.url).href;
    runtime = (import(/* @vite-ignore */ `${base}ort.wasm.min.mjs`) as Promise<Ort>).then((ort) => {
      ort.env.wasm.wasmPaths = base;
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = "error";
      probe.runtimeReadyAt = performance.now();
      return ort;
    });
  }
  return runtime;
}

const decoders = new Map<string, Promise<Decoder>>();

/** One model's decoder: (n, d) latents in, (n, C, H, W) images in [0, 1] out. */
export class Decoder {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private ort: Ort,
    private session: OrtModule.InferenceSession,
    readonly shape: [number, number, number],
    readonly d: number,
  ) {}

  /** The decoder whose blob has ``digest`` (it may not have arrived yet); one session per digest. */
  static open(digest: string): Promise<Decoder> {
    let found = decoders.get(digest);
    if (!found) {
      found = (async () => {
        const why = unavailable();
        if (why) throw new Error(why);
        const [ort, blob] = await Promise.all([loadRuntime(), getBlob(digest)]);
        const session = await ort.InferenceSession.create(blob.body, {
          executionProviders: ["wasm"],
          graphOptimizationLevel: "all",
        });
        return new Decoder(ort, session, blob.header.shape as [number, number, number], blob.header.d as number);
      })();
      found.catch((e) => {
        probe.error = String(e?.message ?? e);
      });
      decoders.set(digest, found);
    }
    return found;
  }

  /** Decode ``n`` latents (n * d floats); runs one after another (a session runs one at a time). */
  decode(z: Float32Array, n = 1): Promise<Float32Array> {
    const run = async () => {
      const t0 = performance.now();
      const out = await this.session.run({ z: new this.ort.Tensor("float32", z, [n, this.d]) });
      probe.decodes++;
      probe.lastRunMs = performance.now() - t0;
      return out.image.data as Float32Array;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/**
 * Paint one (C, H, W) image in [0, 1] (C = 1 or 3) from ``pixels`` at ``offset`` onto ``canvas``:
 * the canvas holds the image's own pixels, and CSS enlarges it ``scale`` times, pixelated.
 * Rounded as vqviz.images.to_uint8 rounds.
 */
export function paint(
  canvas: HTMLCanvasElement,
  pixels: Float32Array,
  shape: [number, number, number],
  scale: number,
  offset = 0,
): void {
  const [c, h, w] = shape;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  const image = new ImageData(w, h);
  const out = image.data;
  const plane = h * w;
  const byte = (v: number) => Math.floor(Math.min(1, Math.max(0, v)) * 255 + 0.5);
  for (let i = 0; i < plane; i++) {
    const r = byte(pixels[offset + i]);
    out[4 * i] = r;
    out[4 * i + 1] = c === 3 ? byte(pixels[offset + plane + i]) : r;
    out[4 * i + 2] = c === 3 ? byte(pixels[offset + 2 * plane + i]) : r;
    out[4 * i + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(image, 0, 0);
}
