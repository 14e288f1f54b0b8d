/**
 * The style mixer's sliders and mixture: z = a1 z1 + a2 z2 + a3 z3 with a3 = 1 - a1 - a2, decoded in
 * the browser at every step of a slider (no round trip to the server). The server is told the weights
 * when a slider is let go, for its download and for the next visit of the page. Where this browser
 * cannot decode (no WebAssembly, a decoder too large to send), the server decodes: each step is then
 * sent at once, and the picture is the server's.
 */
import { watchBlob } from "./blobs";
import { Decoder, paint, probe as decodeProbe, unavailable } from "./decoder";
import { el } from "./dom";

export interface MixerProps {
  kind: "mixer";
  decoder: string | null; // digest of the decoder's blob; null: the server decodes
  latents: number[][]; // z1, z2, z3
  shape: [number, number, number]; // C, H, W of an image
  scale: number; // the picture's enlargement
  alpha: [number, number]; // a1, a2 as the server holds them
  step: number;
  image: string | null; // the server's picture of the mixture (a data URL), when the server decodes
  why: string | null; // why the server decodes
}

type SetState = (name: string, value: unknown) => void;

/** What a browser test or the benchmark reads (window.__vqvizMixer). */
export interface MixerProbe {
  mode: "loading" | "browser" | "server";
  alpha: [number, number];
  inputAt: number | null; // the last slider event's time stamp
  shownAt: number | null; // when the mixture of that step was put on the canvas
  paintedAt: number | null; // the next animation frame after it: the frame that shows it has begun
  latencies: number[]; // paintedAt - inputAt of each step decoded here
  latent: number[] | null; // the last mixture decoded here, and its image
  image: number[] | null;
}

declare global {
  interface Window {
    __vqvizMixer?: MixerProbe;
  }
}

const fmt = (v: number) => v.toFixed(2);

export class MixerView {
  readonly root: HTMLDivElement;
  private sliders: HTMLInputElement[] = [];
  private values: HTMLSpanElement[] = [];
  private a3: HTMLDivElement;
  private note: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private picture: HTMLImageElement;
  private caption: HTMLElement;
  private where: HTMLDivElement;
  private props: MixerProps | null = null;
  private setState: SetState = () => {};
  private decoder: Decoder | null = null;
  private busy = false;
  private pending = false;
  private lastPropAlpha = "";
  private lastLatents = "";
  private sent: string[] = []; // the weights last sent to the server
  private error: string | null = null; // why this browser cannot decode
  readonly probe: MixerProbe;

  constructor(parent: HTMLElement | ShadowRoot) {
    this.root = el("div", "vqx-root", parent);
    const left = el("div", "vqx-controls", this.root);
    ["α1, the weight of z1", "α2, the weight of z2"].forEach((text, i) => {
      const label = el("label", "vqx-slider", left);
      const head = el("div", "vqx-slider-head", label);
      el("span", "vqx-slider-name", head).textContent = text;
      this.values.push(el("span", "vqx-slider-value", head));
      const input = el("input", "vqx-range", label);
      input.type = "range";
      input.min = "0";
      input.max = "1";
      input.setAttribute("aria-label", text);
      input.addEventListener("input", (e) => this.onInput(i, e.timeStamp));
      input.addEventListener("change", () => this.onRelease());
      this.sliders.push(input);
    });
    this.a3 = el("div", "vqx-a3", left);
    this.note = el("div", "vqx-note", left);
    const right = el("figure", "vqx-figure", this.root);
    this.canvas = el("canvas", "vqx-canvas", right);
    this.picture = el("img", "vqx-picture", right);
    this.picture.hidden = true;
    this.caption = el("figcaption", "vqx-caption", right);
    this.where = el("div", "vqx-where", right);
    this.probe = window.__vqvizMixer = {
      mode: "loading",
      alpha: [0, 0],
      inputAt: null,
      shownAt: null,
      paintedAt: null,
      latencies: [],
      latent: null,
      image: null,
    };
  }

  update(props: MixerProps, setState: SetState, setTrigger: SetState): void {
    const first = !this.props;
    const decoderChanged = this.props?.decoder !== props.decoder;
    const latents = JSON.stringify(props.latents);
    let redraw = latents !== this.lastLatents; // a new triplet
    this.lastLatents = latents;
    this.props = props;
    this.setState = setState;
    for (const s of this.sliders) s.step = String(props.step);
    const alpha = JSON.stringify(props.alpha);
    if (alpha !== this.lastPropAlpha) {
      // the server's weights (a restored session): shown, unless they are ones this view sent, echoed
      // back by a rerun that may arrive after the sliders have moved on
      this.lastPropAlpha = alpha;
      if (first || !this.sent.includes(alpha)) {
        this.set(props.alpha[0], props.alpha[1]);
        redraw = true;
      }
    }
    if (props.decoder && decoderChanged) {
      const why = unavailable();
      if (why) return this.fallBack(why);
      this.probe.mode = "loading";
      this.where.textContent = "Loading the decoder into this browser…";
      const digest = props.decoder;
      watchBlob(digest, () => this.props?.decoder === digest && setTrigger("missing", digest));
      Decoder.open(props.decoder).then(
        (d) => {
          if (this.props?.decoder !== props.decoder) return;
          this.decoder = d;
          this.probe.mode = "browser";
          this.where.textContent = "Decoded in this browser (onnxruntime-web): each step costs no round trip.";
          this.draw(null);
        },
        (e) => this.fallBack(`this browser could not run the decoder (${e?.message ?? e})`),
      );
    } else if (!props.decoder) {
      this.decoder = null;
      this.probe.mode = "server";
      this.where.textContent = `Decoded on the server: ${props.why ?? "decoding in the browser is off"}.`;
    }
    if (this.decoder && redraw) this.draw(null);
    else if (!this.decoder) this.showServerPicture();
  }

  private fallBack(why: string): void {
    this.decoder = null;
    this.probe.mode = "server";
    decodeProbe.error = why;
    this.where.textContent = `Decoded on the server: ${why}.`;
    this.tell(why); // the server sends its pictures from now on
  }

  private alpha(): [number, number] {
    return [Number(this.sliders[0].value), Number(this.sliders[1].value)];
  }

  /** Show weights on the sliders (a2 held to 1 - a1 at most, as the server holds it). */
  private set(a1: number, a2: number): void {
    this.sliders[0].value = String(a1);
    this.sliders[1].value = String(a2);
    this.readouts();
  }

  private readouts(): [number, number] {
    let [a1, a2] = this.alpha();
    const step = this.props?.step ?? 0.01;
    const capped = a1 + a2 > 1 + step / 2;
    if (capped) {
      // a mixture's weights are at most 1 in all: z3's cannot be negative
      a2 = Math.round((1 - a1) * 100) / 100;
      this.sliders[1].value = String(a2);
    }
    this.note.textContent = capped
      ? `α1 + α2 is at most 1, so that z3's weight is not negative: α2 is taken as 1 − α1 = ${fmt(a2)}.`
      : "";
    this.values[0].textContent = fmt(a1);
    this.values[1].textContent = fmt(a2);
    const a3 = Math.abs(1 - a1 - a2);
    this.a3.textContent = `α3 = 1 − α1 − α2, the weight of z3: ${fmt(a3)}`;
    this.caption.textContent = `mixture ${fmt(a1)} z1 + ${fmt(a2)} z2 + ${fmt(a3)} z3`;
    this.probe.alpha = [a1, a2];
    return [a1, a2];
  }

  private onInput(_which: number, at: number): void {
    this.readouts();
    this.probe.inputAt = at;
    if (this.decoder) this.draw(at);
    else if (this.probe.mode === "server") this.tell(); // the server draws each step
  }

  private onRelease(): void {
    if (this.decoder) this.tell(); // the server learns where the sliders rest
  }

  /** Tell the server the weights (and why this browser cannot decode, once it cannot): one state value,
   * since each value a component declares costs a fresh tab a rerun's worth of time. */
  private tell(error: string | null = this.error): void {
    const alpha = this.alpha();
    this.error = error;
    this.sent = [...this.sent.slice(-15), JSON.stringify(alpha)];
    this.setState("mixer", { alpha, error });
  }

  /** Decode the sliders' mixture and draw it; while a decode runs, only the latest step waits. */
  private draw(inputAt: number | null): void {
    if (this.busy) {
      this.pending = true;
      return;
    }
    const props = this.props!;
    const [a1, a2] = this.alpha();
    const w = [a1, a2, Math.max(0, 1 - a1 - a2)];
    const [z1, z2, z3] = props.latents;
    const z = new Float32Array(z1.length);
    for (let j = 0; j < z.length; j++) z[j] = Math.fround(w[0] * z1[j] + w[1] * z2[j] + w[2] * z3[j]);
    this.busy = true;
    this.decoder!.decode(z, 1)
      .then((image) => {
        paint(this.canvas, image, props.shape, props.scale);
        this.canvas.hidden = false;
        this.picture.hidden = true;
        this.probe.shownAt = performance.now();
        this.probe.latent = Array.from(z);
        this.probe.image = Array.from(image);
        if (inputAt !== null)
          requestAnimationFrame(() => {
            this.probe.paintedAt = performance.now();
            this.probe.latencies.push(this.probe.paintedAt - inputAt);
          });
      })
      .catch((e) => this.fallBack(`this browser could not run the decoder (${e?.message ?? e})`))
      .finally(() => {
        this.busy = false;
        if (this.pending && this.decoder) {
          this.pending = false;
          this.draw(this.probe.inputAt);
        }
      });
  }

  private showServerPicture(): void {
    const src = this.props?.image;
    if (!src) return;
    if (this.picture.src !== src) this.picture.src = src;
    const [, h, w] = this.props!.shape;
    this.picture.style.width = `${w * this.props!.scale}px`;
    this.picture.style.height = `${h * this.props!.scale}px`;
    this.picture.hidden = false;
    this.canvas.hidden = true;
    this.probe.shownAt = performance.now();
  }

  destroy(): void {
    this.root.remove();
    if (window.__vqvizMixer === this.probe) delete window.__vqvizMixer;
  }
}
