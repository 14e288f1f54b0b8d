/**
 * One map on the page: a regl-scatterplot canvas, its toolbar, legend, hover card (the point's own
 * thumbnail, cut from the atlas in the browser) and an overlay of marks (placed stars, a decoded
 * spot). Selections and clicks on empty spots go back to Python through the component's state.
 */
import createScatterplot from "regl-scatterplot";
import { el, linear, type Scale } from "./dom";
import { cardLines, drawThumbnail } from "./card";
import { paint } from "./decoder";
import { type Decoded, type DecodeProps, HoverDecoding, type HoverProbe } from "./hover";
import { renderLegend } from "./legend";
import { type Mark, paintMarks } from "./overlay";
import { get, hasAtlas, spatialIndex, type Payload } from "./payload";

export type { Mark };

export interface ViewProps {
  store: string;
  colour: string;
  hover: string[];
  marks: Mark[];
  spot: [number, number] | null;
  select: { rows: number[]; token: string } | null;
  height: number;
  point_size: number | null;
  legend_max: number;
  decode?: DecodeProps | null; // decoding under the cursor, when it is on
}

export type Selection =
  | { kind: "none"; rows: []; seq: number }
  | { kind: "point"; rows: number[]; seq: number }
  | { kind: "lasso" | "box"; rows: number[]; polygon: [number, number][]; seq: number }
  | { kind: "spot"; rows: []; spot: [number, number]; seq: number };

type SetState = (name: string, value: unknown) => void;

const BACKGROUND_COLOUR = "#c8c8c8";
const TIP_SCALE = 4; // a 28 px thumbnail is shown at 112 px, pixelated
const TIP_MIN = 96;
const MISSING_AFTER_MS = 1500;
const MISSING_MOST_MS = 12000;
const ATLAS_MISSING_AFTER_MS = 10000; // the atlas may be 13 MB on a slow link: wait longer before asking again

/** The measurement hooks a browser test reads (window.__vqvizMap): the latest map on the page. */
export interface Probe {
  n: number;
  payloadBytes: number;
  mountedAt: number;
  drawnAt: number | null;
  atlasAt: number | null;
  moveAt: number | null;
  hoverShownAt: number | null;
  hoverPaintedAt: number | null;
  hoverRow: number | null;
  frames: number; // frames drawn by regl-scatterplot (its 'draw' events)
  store: string | null; // the digest of the payload drawn
  marks: number; // the marks (stars) drawn over the map
  screenPosition(row: number): [number, number] | null;
  points(): number[]; // every row's data coordinates, x0, y0, x1, y1, ...
  value(field: string, row: number): number | null; // a row's code (or value in [0, 1]) of a field
  dataAt(clientX: number, clientY: number): [number, number] | null;
  selected(): number[]; // the rows selected in the browser now
  selection: Selection | null;
  decoding: HoverProbe;
}

declare global {
  interface Window {
    __vqvizMap?: Probe;
  }
}

export class MapView {
  readonly root: HTMLDivElement;
  private plot: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private overlay: HTMLCanvasElement;
  private legend: HTMLDivElement;
  private tip: HTMLDivElement;
  private tipImage: HTMLCanvasElement;
  private tipText: HTMLDivElement;
  private tipDecoded: HTMLCanvasElement;
  private hoverDecoding: HoverDecoding;
  private status: HTMLDivElement;
  private buttons = new Map<string, HTMLButtonElement>();

  private sp: ReturnType<typeof createScatterplot> | null = null;
  private payload: Payload | null = null;
  private props: ViewProps | null = null;
  private setState: SetState = () => {};
  private setTrigger: SetState = () => {};
  private xScale: Scale | null = null;
  private yScale: Scale | null = null;
  private colourShown: string | null = null;
  private hidden = new Set<number>();
  private byCode: Map<number, number[]> | null = null;
  private atlas: ImageBitmap | null = null;
  private mouse: [number, number] = [0, 0];
  private hovered = -1;
  private downAt: [number, number] | null = null;
  private selectedInClick = false;
  private lassoing = false;
  private lassoRows: number[] = [];
  private lassoKind: "lasso" | "box" = "lasso";
  private spotShown: [number, number] | null = null;
  private lastPropSpot = "null";
  private appliedSelect: string | null = null;
  private seq = 0;
  private drawing: Promise<void> = Promise.resolve();
  private resizeObserver: ResizeObserver;
  readonly probe: Probe;

  constructor(parent: HTMLElement | ShadowRoot) {
    this.root = el("div", "vqm-root", parent);
    const bar = el("div", "vqm-toolbar", this.root);
    for (const [id, text, title] of [
      ["pan", "Pan", "Drag to pan, scroll to zoom; click a point to select it, an empty spot to decode it"],
      ["lasso", "Lasso", "Drag a free-hand lasso (or hold Shift in Pan mode)"],
      ["box", "Box", "Drag a rectangle"],
      ["reset", "Reset view", "Zoom back to the whole map"],
    ] as const) {
      const b = el("button", "vqm-button", bar);
      b.type = "button";
      b.textContent = text;
      b.title = title;
      b.dataset.action = id;
      b.addEventListener("click", () => this.tool(id));
      this.buttons.set(id, b);
    }
    this.status = el("div", "vqm-status", bar);
    this.plot = el("div", "vqm-plot", this.root);
    this.canvas = el("canvas", "vqm-canvas", this.plot);
    this.overlay = el("canvas", "vqm-overlay", this.plot);
    this.tip = el("div", "vqm-tip", this.plot);
    this.tip.hidden = true;
    this.tipImage = el("canvas", "vqm-tip-image", this.tip);
    this.tipDecoded = el("canvas", "vqm-tip-decoded", this.tip);
    this.tipDecoded.hidden = true;
    this.tipText = el("div", "vqm-tip-text", this.tip);
    this.hoverDecoding = new HoverDecoding(
      (text) => (this.status.textContent = text ?? this.pointsText()),
      (d) => this.showDecoded(d),
    );
    this.legend = el("div", "vqm-legend", this.root);
    this.buttons.get("pan")!.classList.add("vqm-on");

    this.canvas.addEventListener("pointerdown", (e) => {
      this.downAt = [e.clientX, e.clientY];
      this.selectedInClick = false;
    });
    this.plot.addEventListener(
      "mousemove",
      (e) => {
        const r = this.plot.getBoundingClientRect();
        this.mouse = [e.clientX - r.left, e.clientY - r.top];
        this.probe.moveAt = e.timeStamp;
        if (!this.tip.hidden) this.placeTip();
        if (this.hovered < 0 && e.buttons === 0 && this.hoverDecoding.ready && this.sp?.get("mouseMode" as any) === "panZoom") {
          const at = this.dataAt(e.clientX, e.clientY);
          if (at) this.hoverDecoding.request(at[0], at[1], e.timeStamp);
        }
      },
      { capture: true },
    );
    this.plot.addEventListener("mouseleave", () => this.hideTip());
    this.resizeObserver = new ResizeObserver(() => this.paintOverlay());
    this.resizeObserver.observe(this.plot);

    const self = this;
    this.probe = {
      n: 0,
      payloadBytes: 0,
      mountedAt: performance.now(),
      drawnAt: null,
      atlasAt: null,
      moveAt: null,
      hoverShownAt: null,
      hoverPaintedAt: null,
      hoverRow: null,
      frames: 0,
      store: null,
      marks: 0,
      selection: null,
      decoding: this.hoverDecoding.probe,
      value(field: string, row: number) {
        const f = self.payload?.fields.get(field);
        return f && row >= 0 && row < self.payload!.header.n ? Number(f.codes[row]) : null;
      },
      points() {
        const p = self.payload;
        if (!p) return [];
        const [[x0, x1], [y0, y1]] = p.header.domain;
        const out: number[] = [];
        for (let i = p.header.m; i < p.header.m + p.header.n; i++)
          out.push(x0 + ((p.x[i] + 1) / 2) * (x1 - x0), y0 + ((p.y[i] + 1) / 2) * (y1 - y0));
        return out;
      },
      screenPosition(row: number) {
        if (!self.sp || !self.payload) return null;
        const [x, y] = self.sp.getScreenPosition(row + self.payload.header.m) as [number, number];
        const c = self.canvas.getBoundingClientRect();
        return [c.left + x, c.top + y];
      },
      dataAt: (x: number, y: number) => self.dataAt(x, y),
      selected: () => (self.sp && self.payload ? self.rowsOf(self.sp.get("selectedPoints" as any) as number[]) : []),
    };
    window.__vqvizMap = this.probe;
  }

  /** Apply new props: a new payload redraws the points; anything else is applied in place. */
  async update(props: ViewProps, setState: SetState, setTrigger: SetState): Promise<void> {
    performance.mark("vqm:update");
    this.props = props;
    this.setState = setState;
    this.setTrigger = setTrigger;
    this.plot.style.height = `${props.height}px`;
    if (!this.payload || this.payload.header.digest !== props.store) {
      this.status.textContent = "Loading the map…";
      // the payload comes once per session, in its own element; if this page lacks it (evicted, or
      // its element went before it was mounted), ask Python to send it again, and again, less and
      // less often, until it is here: a request can be lost in a rerun too
      let wait = MISSING_AFTER_MS;
      let timer = 0;
      const ask = () => {
        if (this.props !== props) return;
        this.setTrigger("missing", props.store);
        wait = Math.min(2 * wait, MISSING_MOST_MS);
        timer = window.setTimeout(ask, wait);
      };
      timer = window.setTimeout(ask, wait);
      const payload = await get(props.store);
      window.clearTimeout(timer);
      performance.mark("vqm:payload");
      if (this.props !== props) return; // newer props arrived while waiting
      await this.drawing;
      this.drawing = this.load(payload);
      await this.drawing;
    }
    await this.drawing;
    if (this.props !== props) return;
    if (this.colourShown !== props.colour) await this.recolour();
    this.applySelect(props);
    const spot = JSON.stringify(props.spot);
    if (spot !== this.lastPropSpot) {
      // a spot from Python (e.g. restored from the URL) shows until the next click says otherwise
      this.lastPropSpot = spot;
      this.spotShown = props.spot;
    }
    this.paintOverlay();
    // where this browser cannot decode, the toolbar says so, and a click decodes on the server as ever
    this.hoverDecoding.configure(props.decode, (digest) => this.setTrigger("missing", digest));
  }

  private scatterplot(): ReturnType<typeof createScatterplot> {
    if (this.sp) return this.sp;
    const bg = getComputedStyle(this.root).getPropertyValue("--st-background-color").trim() || "#ffffff";
    performance.mark("vqm:create-start");
    const sp = createScatterplot({
      canvas: this.canvas,
      width: "auto",
      height: "auto",
      backgroundColor: bg,
      syncEvents: true,
      deselectOnDblClick: false,
      lassoInitiator: false,
      lassoOnLongPress: false,
      lassoColor: "#d62728",
      lassoMinDelay: 8,
      lassoMinDist: 3,
      pointColorHover: "#111111",
      pointOutlineWidth: 2,
      opacityInactiveScale: 0.35,
      showReticle: false,
      lassoLongPressIndicatorParentElement: this.root,
      lassoInitiatorParentElement: this.root,
    } as any);
    sp.subscribe("pointOver", (i: number) => this.showTip(i));
    sp.subscribe("pointOut", () => this.hideTip());
    sp.subscribe("select", ({ points }: { points: number[] }) => this.onSelect(points));
    sp.subscribe("deselect", () => this.onSelect([]));
    sp.subscribe("lassoStart", () => {
      this.lassoing = true;
      this.lassoRows = [];
    });
    sp.subscribe("lassoEnd", ({ coordinates }: { coordinates: unknown[] }) => this.onLassoEnd(coordinates));
    sp.subscribe("view", () => this.paintOverlay());
    sp.subscribe("draw", () => {
      this.probe.frames++;
    });
    // after regl-scatterplot's own click handler (added by createScatterplot): with synchronous
    // events, a click that selected a point has set selectedInClick by the time this runs
    this.canvas.addEventListener("click", (e) => this.onClick(e));
    this.sp = sp;
    performance.mark("vqm:create-end");
    return sp;
  }

  private async load(payload: Payload): Promise<void> {
    const sp = this.scatterplot();
    const h = payload.header;
    this.payload = payload;
    this.atlas = null;
    this.byCode = null;
    this.hidden.clear();
    this.xScale = linear(h.domain[0]);
    this.yScale = linear(h.domain[1]);
    sp.set({ xScale: this.xScale, yScale: this.yScale } as any);
    const total = h.n + h.m;
    const size = this.props?.point_size ?? (h.n < 3000 ? 7 : h.n < 20000 ? 4 : h.n < 200000 ? 2.5 : 1.5);
    sp.set({
      pointSize: size,
      opacity: h.n < 20000 ? 0.85 : h.n < 200000 ? 0.6 : 0.4,
    } as any);
    this.colourShown = null;
    this.probe.drawnAt = null; // each payload's first frame is reported
    this.probe.store = null;
    await this.recolour(true);
    this.probe.n = h.n;
    this.probe.payloadBytes = payload.bytes;
    this.status.textContent = this.pointsText();
    void total;
    // decode the atlas after the first frame: hover images follow the map, they never delay it
    const a = h.atlas;
    if (a)
      setTimeout(() => {
        if (this.payload === payload && !hasAtlas(a.digest)) this.setTrigger("missing", a.digest);
      }, ATLAS_MISSING_AFTER_MS);
    requestAnimationFrame(() => {
      payload.atlas().then((bitmap) => {
        if (this.payload === payload) {
          this.atlas = bitmap;
          this.probe.atlasAt = performance.now();
        }
      });
    });
  }

  /** Draw the points coloured by the props' field (the first draw builds the spatial index; later
   * ones reuse it). */
  private async recolour(first = false): Promise<void> {
    const sp = this.sp!;
    const p = this.payload!;
    const h = p.header;
    const name = this.props!.colour;
    const field = p.fields.get(name) ?? p.fields.values().next().value;
    const total = h.n + h.m;
    const z = new Float32Array(total);
    let colours: string[];
    const continuous = field?.header.kind === "continuous";
    if (field && !continuous) {
      const k = field.header.names.length;
      const pal = field.header.colours.length ? field.header.colours : ["#1f77b4"];
      colours = Array.from({ length: k }, (_, i) => pal[i % pal.length]);
      colours.push(BACKGROUND_COLOUR);
      z.fill(k, 0, h.m);
      const codes = field.codes;
      for (let i = 0; i < h.n; i++) z[h.m + i] = codes[i];
    } else if (field) {
      // continuous values in [0, 1] (packed so), on a ramp of colours; the background at 0
      colours = field.header.colours;
      const codes = field.codes;
      for (let i = 0; i < h.n; i++) z[h.m + i] = codes[i];
    } else {
      colours = ["#1f77b4"];
    }
    sp.set({ pointColor: colours, pointColorActive: colours, colorBy: "valueA" } as any);
    const points = { x: p.x, y: p.y, z };
    const opts: Record<string, unknown> = { zDataType: continuous ? "continuous" : "categorical" };
    opts.spatialIndex = first ? spatialIndex(p) : sp.get("spatialIndex" as any);
    const selected = first ? [] : (sp.get("selectedPoints" as any) as number[]);
    if (selected.length) opts.select = selected;
    performance.mark("vqm:draw-start");
    await sp.draw(points as any, opts as any);
    performance.mark("vqm:draw-resolved");
    this.colourShown = name;
    this.hidden.clear();
    this.byCode = null;
    this.renderLegend(field?.header.name ?? "", continuous);
    if (this.probe.drawnAt === null) {
      // the draw above has set the points; the next frame shows them (ask for one: the library may
      // have drawn its frame already, before the promise resolved, and then draws no other)
      sp.subscribe(
        "draw",
        () => {
          if (this.probe.drawnAt === null) {
            this.probe.drawnAt = performance.now();
            this.probe.store = p.header.digest;
            performance.mark("vqm:first-frame");
            this.root.dataset.drawn = "1";
          }
        },
        1,
      );
      sp.redraw();
    }
  }

  // ----- legend: click a category to hide or show its points (in the browser only) -----
  private renderLegend(name: string, continuous: boolean): void {
    const field = this.payload!.fields.get(name);
    renderLegend(this.legend, field?.header, continuous, this.props?.legend_max ?? 40, (code, item) =>
      this.toggleCategory(code, item),
    );
  }

  private toggleCategory(code: number, item: HTMLElement): void {
    const sp = this.sp!;
    const p = this.payload!;
    if (!this.byCode) {
      const codes = p.fields.get(this.colourShown!)!.codes;
      const m = new Map<number, number[]>();
      for (let i = 0; i < p.header.n; i++) {
        const c = codes[i];
        let list = m.get(c);
        if (!list) m.set(c, (list = []));
        list.push(i + p.header.m);
      }
      this.byCode = m;
    }
    if (this.hidden.has(code)) this.hidden.delete(code);
    else this.hidden.add(code);
    item.classList.toggle("vqm-off", this.hidden.has(code));
    if (!this.hidden.size) {
      sp.unfilter({ preventEvent: true } as any);
      return;
    }
    const shown: number[] = [];
    for (let i = 0; i < p.header.m; i++) shown.push(i);
    for (const [c, list] of this.byCode) if (!this.hidden.has(c)) for (const i of list) shown.push(i);
    sp.filter(shown, { preventEvent: true } as any);
  }

  // ----- selection, lasso, box and clicks on empty spots -----
  private tool(id: "pan" | "lasso" | "box" | "reset"): void {
    const sp = this.sp;
    if (!sp) return;
    if (id === "reset") {
      sp.reset();
      return;
    }
    for (const k of ["pan", "lasso", "box"]) this.buttons.get(k)!.classList.toggle("vqm-on", k === id);
    if (id === "pan") sp.set({ mouseMode: "panZoom", lassoType: "freeform" } as any);
    else sp.set({ mouseMode: "lasso", lassoType: id === "box" ? "rectangle" : "freeform" } as any);
    this.lassoKind = id === "box" ? "box" : "lasso";
  }

  private rowsOf(points: ArrayLike<number>): number[] {
    const m = this.payload!.header.m;
    const rows: number[] = [];
    for (let i = 0; i < points.length; i++) if (points[i] >= m) rows.push(points[i] - m);
    return rows;
  }

  private send(sel: Selection): void {
    if (sel.kind !== "spot") {
      this.spotShown = null;
      this.paintOverlay();
    }
    this.probe.selection = sel;
    this.setState("selection", sel);
  }

  private onSelect(points: number[]): void {
    if (this.lassoing) {
      this.lassoRows = this.rowsOf(points); // sent with the polygon, at lassoEnd (which follows)
      return;
    }
    if (!points.length) {
      this.send({ kind: "none", rows: [], seq: ++this.seq });
      return;
    }
    this.selectedInClick = true;
    this.send({ kind: "point", rows: this.rowsOf(points), seq: ++this.seq });
  }

  private onLassoEnd(raw: unknown[]): void {
    this.lassoing = false;
    // [[x, y], ...] (typed as a flat list in regl-scatterplot's types: accept both)
    const coordinates: [number, number][] = Array.isArray(raw[0])
      ? (raw as [number, number][])
      : Array.from({ length: raw.length / 2 }, (_, k) => [raw[2 * k] as number, raw[2 * k + 1] as number]);
    const [[x0, x1], [y0, y1]] = this.payload!.header.domain;
    // lasso coordinates are in the points' normalized space (NDC of the whole map)
    const polygon = coordinates.map(
      ([u, v]) => [x0 + ((u + 1) / 2) * (x1 - x0), y0 + ((v + 1) / 2) * (y1 - y0)] as [number, number],
    );
    const kind = this.sp?.get("mouseMode" as any) === "lasso" ? this.lassoKind : "lasso";
    this.send({ kind, rows: this.lassoRows, polygon, seq: ++this.seq });
  }

  private onClick(e: MouseEvent): void {
    // regl-scatterplot's own click handler (registered first, events synchronous) has run: if it
    // selected a point, this was a click on a point
    const down = this.downAt;
    this.downAt = null;
    if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 3) return;
    if (this.selectedInClick || !this.sp || !this.xScale || !this.yScale) return;
    if (this.sp.get("mouseMode" as any) !== "panZoom") return;
    const spot = this.dataAt(e.clientX, e.clientY)!;
    this.sp.deselect({ preventEvent: true } as any);
    this.spotShown = spot;
    this.paintOverlay();
    this.send({ kind: "spot", rows: [], spot, seq: ++this.seq });
  }

  /** The data coordinates under a point of the window (null before the first draw). */
  dataAt(clientX: number, clientY: number): [number, number] | null {
    if (!this.xScale || !this.yScale) return null;
    const r = this.canvas.getBoundingClientRect();
    return [this.xScale.invert(clientX - r.left), this.yScale.invert(clientY - r.top)];
  }

  private applySelect(props: ViewProps): void {
    const cmd = props.select;
    if (!cmd || cmd.token === this.appliedSelect || !this.sp || !this.payload) return;
    this.appliedSelect = cmd.token;
    // Python echoes the browser's own selection back after every click: selecting it again would
    // cost a frame (0.5 s at a million points in software WebGL) before the panel is shown
    const shown = this.rowsOf(this.sp.get("selectedPoints" as any) as number[]).sort((a, b) => a - b);
    const wanted = [...cmd.rows].sort((a, b) => a - b);
    if (shown.length === wanted.length && shown.every((r, i) => r === wanted[i])) return;
    const m = this.payload.header.m;
    if (cmd.rows.length) this.sp.select(cmd.rows.map((r) => r + m), { preventEvent: true } as any);
    else this.sp.deselect({ preventEvent: true } as any);
  }

  // ----- hover: the point's thumbnail and fields, drawn in the browser -----
  private showTip(i: number): void {
    const p = this.payload;
    if (!p) return;
    this.hovered = i;
    this.hoverDecoding.cancel();
    this.tipDecoded.hidden = true;
    const m = p.header.m;
    let lines: string[];
    if (i < m) {
      lines = ["train map point"];
      this.tipImage.hidden = true;
    } else {
      const row = i - m;
      lines = cardLines(p, row, this.props?.hover ?? []);
      this.tipImage.hidden = !(p.header.atlas && this.atlas);
      if (p.header.atlas && this.atlas) drawThumbnail(this.tipImage, this.atlas, p, row, TIP_SCALE, TIP_MIN);
      else if (p.header.atlas) lines.push("(image loading…)");
      this.probe.hoverRow = row;
    }
    this.tipText.textContent = lines.join("\n");
    this.tip.hidden = false;
    this.placeTip();
    this.probe.hoverShownAt = performance.now();
    // the card is painted with the frame after this callback; performance.now() in the next
    // animation frame callback bounds that frame's start from above
    requestAnimationFrame(() => {
      if (this.hovered === i) this.probe.hoverPaintedAt = performance.now();
    });
  }

  /** The toolbar's line about the map: its points. */
  private pointsText(): string {
    const h = this.payload?.header;
    return h ? `${h.n.toLocaleString()} points${h.m ? ` on ${h.m.toLocaleString()} train points` : ""}` : "";
  }

  private hideTip(): void {
    this.hovered = -1;
    this.hoverDecoding.cancel();
    this.tip.hidden = true;
  }

  /** The card of a spot decoded under the cursor: its image and where it came from. */
  private showDecoded(d: Decoded): void {
    if (this.hovered >= 0) return; // the cursor is on a point: its own card shows
    paint(this.tipDecoded, d.image, d.shape, Math.max(TIP_SCALE, Math.ceil(TIP_MIN / Math.max(d.shape[1], d.shape[2]))));
    this.tipDecoded.hidden = false;
    this.tipImage.hidden = true;
    const how = this.props?.decode?.inverse.how ?? "";
    this.tipText.textContent = [`decoded at (${d.xy[0].toFixed(2)}, ${d.xy[1].toFixed(2)})`, how].join("\n");
    this.tip.hidden = false;
    this.placeTip();
    const probe = this.hoverDecoding.probe;
    probe.shownAt = performance.now();
    requestAnimationFrame(() => {
      probe.paintedAt = performance.now();
      probe.latencies.push(probe.paintedAt - d.movedAt);
    });
  }

  private placeTip(): void {
    const w = this.plot.clientWidth;
    const h = this.plot.clientHeight;
    const tw = this.tip.offsetWidth;
    const th = this.tip.offsetHeight;
    let [x, y] = [this.mouse[0] + 16, this.mouse[1] + 16];
    if (x + tw > w) x = this.mouse[0] - 16 - tw;
    if (y + th > h) y = Math.max(0, this.mouse[1] - 16 - th);
    this.tip.style.transform = `translate(${Math.max(0, x)}px, ${y}px)`;
  }

  // ----- marks: the user's placed images (stars) and a decoded spot (a cross) -----
  private paintOverlay(): void {
    const o = this.overlay;
    const dpr = window.devicePixelRatio || 1;
    const w = this.plot.clientWidth;
    const h = this.plot.clientHeight;
    if (o.width !== Math.round(w * dpr) || o.height !== Math.round(h * dpr)) {
      o.width = Math.round(w * dpr);
      o.height = Math.round(h * dpr);
    }
    const ctx = o.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.xScale || !this.yScale || !this.props) return;
    this.probe.marks = this.props.marks.length;
    paintMarks(ctx, this.xScale, this.yScale, this.props.marks, this.spotShown);
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    this.sp?.destroy();
    this.sp = null;
    this.root.remove();
    if (window.__vqvizMap === this.probe) delete window.__vqvizMap;
  }
}
