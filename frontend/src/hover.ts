/**
 * Decoding under the cursor: while it is on, hovering over an empty spot of the map decodes the
 * latent behind it (see spots.ts) in the browser, at most one decode at a time, the latest spot first.
 */
import { watchBlob } from "./blobs";
import { Decoder, unavailable } from "./decoder";
import { type Inverse, type Spot, SpotLatents } from "./spots";

export interface DecodeProps {
  decoder: string; // digest of the decoder's blob
  inverse: Inverse;
}

export interface Decoded extends Spot {
  image: Float32Array;
  shape: [number, number, number];
  movedAt: number; // the mouse event's time stamp
}

/** What a browser test or the benchmark reads (window.__vqvizMap.decoding). */
export interface HoverProbe {
  state: "off" | "loading" | "ready" | "failed";
  why: string | null;
  last: { xy: [number, number]; latent: number[]; image: number[]; rows: number[]; weights: number[] } | null;
  shownAt: number | null; // the last decoded image put on the card
  paintedAt: number | null; // the next animation frame after it
  latencies: number[]; // paintedAt - the mouse event's time stamp, per decoded spot
  mapXY(): number[] | null; // the map points the mix reads (x0, y0, x1, ...), as the server sent them
}

export class HoverDecoding {
  private key = "null";
  private decoder: Decoder | null = null;
  private spots: SpotLatents | null = null;
  private busy = false;
  private wanted: [number, number, number] | null = null;
  private cancelled = 0;
  readonly probe: HoverProbe;

  constructor(
    private onState: (text: string | null) => void, // the toolbar's line (null: the map's own)
    private onDecoded: (d: Decoded) => void,
  ) {
    const self = this;
    this.probe = {
      state: "off",
      why: null,
      last: null,
      shownAt: null,
      paintedAt: null,
      latencies: [],
      mapXY() {
        const xy = self.spots?.points();
        return xy ? Array.from(xy) : null;
      },
    };
  }

  get ready(): boolean {
    return this.decoder !== null && this.spots !== null;
  }

  /** Turn decoding on (with what it needs), or off (null); ``missing`` asks for a blob the page lacks. */
  configure(props: DecodeProps | null | undefined, missing: (digest: string) => void): void {
    const key = JSON.stringify(props ?? null);
    if (key === this.key) return;
    this.key = key;
    this.decoder = null;
    this.spots = null;
    this.wanted = null;
    if (!props) {
      if (this.probe.state !== "off") this.onState(null);
      this.probe.state = "off";
      return;
    }
    const fail = (why: string) => {
      this.probe.state = "failed";
      this.probe.why = why;
      this.onState(`Decoding under the cursor is off: ${why}; a click decodes the spot on the server.`);
    };
    const why = unavailable();
    if (why) return fail(why);
    this.probe.state = "loading";
    this.onState("Loading the decoder into this browser…");
    const still = () => this.key === key;
    watchBlob(props.decoder, () => still() && missing(props.decoder));
    if (props.inverse.kind === "mix") {
      const latents = props.inverse.latents;
      watchBlob(latents, () => still() && missing(latents));
    }
    Promise.all([Decoder.open(props.decoder), SpotLatents.open(props.inverse)]).then(
      ([decoder, spots]) => {
        if (this.key !== key) return;
        this.decoder = decoder;
        this.spots = spots;
        this.probe.state = "ready";
        this.onState("Hover over an empty spot to decode it here; click to pin it.");
      },
      (e) => {
        if (this.key === key) fail(`this browser could not run the decoder (${e?.message ?? e})`);
      },
    );
  }

  /** Decode the spot at data coordinates (x, y), asked by a mouse event at ``movedAt``. */
  request(x: number, y: number, movedAt: number): void {
    if (!this.ready) return;
    this.wanted = [x, y, movedAt];
    if (!this.busy) void this.next();
  }

  /** Forget a spot not decoded yet (the cursor went onto a point or off the map). */
  cancel(): void {
    this.wanted = null;
    this.cancelled++;
  }

  private async next(): Promise<void> {
    while (this.wanted && this.decoder && this.spots) {
      const [x, y, movedAt] = this.wanted;
      this.wanted = null;
      this.busy = true;
      const ticket = this.cancelled;
      try {
        const spot = this.spots.at(x, y);
        const image = await this.decoder.decode(spot.latent, 1);
        this.probe.last = {
          xy: spot.xy,
          latent: Array.from(spot.latent),
          image: Array.from(image),
          rows: spot.rows,
          weights: spot.weights,
        };
        if (ticket === this.cancelled) this.onDecoded({ ...spot, image, shape: this.decoder.shape, movedAt });
      } finally {
        this.busy = false;
      }
    }
  }
}
