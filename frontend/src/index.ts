/**
 * The Streamlit components-v2 entry point of the vqviz map (`vqviz.map`).
 *
 * Streamlit calls the default export on mount and again whenever the element's data changes, with
 * the same parentElement; it calls the returned function when the element goes away. One module
 * serves three roles, told apart by their data:
 *  - the store: `data` is the points' binary payload (a Uint8Array), decoded once and kept by its digest;
 *  - the atlas store: `data` is the thumbnails' payload (a Uint8Array starting "VQA1"), kept likewise;
 *  - a blob store: `data` is a blob (a Uint8Array starting "VQB1"): a decoder, or a map's latents;
 *  - the view: `data` is small JSON (ViewProps) naming the payload by digest; it draws the map;
 *  - the mixer: `data` is JSON with kind "mixer" (MixerProps): the style mixer's sliders and mixture.
 */
import { decode, has, isAtlas, put, putAtlas } from "./payload";
import { isBlob, putBlob } from "./blobs";
import { MapView, type ViewProps } from "./map";
import { MixerView, type MixerProps } from "./mixer";

interface Args {
  data: unknown;
  parentElement: HTMLElement | ShadowRoot;
  setStateValue: (name: string, value: unknown) => void;
  setTriggerValue: (name: string, value: unknown) => void;
  key: string;
  name: string;
}

const views = new WeakMap<object, MapView>();
const mixers = new WeakMap<object, MixerView>();

export default function mount(args: Args): () => void {
  const { data, parentElement } = args;
  // binary data is a store's (points, thumbnails, a blob); JSON is a view's
  const bytes = data instanceof Uint8Array ? data : null;
  performance.mark(bytes ? "vqm:payload-received" : "vqm:view-received");
  if (bytes && isBlob(bytes)) {
    putBlob(bytes);
    return () => {};
  }
  if (!bytes && (data as { kind?: string })?.kind === "mixer") {
    let mixer = mixers.get(parentElement);
    if (!mixer) {
      mixer = new MixerView(parentElement);
      mixers.set(parentElement, mixer);
    }
    mixer.update(data as MixerProps, args.setStateValue, args.setTriggerValue);
    const mine = mixer;
    return () => {
      if (mixers.get(parentElement) === mine) mixers.delete(parentElement);
      mine.destroy();
    };
  }
  if (bytes && isAtlas(bytes)) {
    putAtlas(bytes);
    return () => {};
  }
  if (bytes) {
    // the points: decoding is views on the buffer (a copy only when it is misaligned)
    const digest = peekDigest(bytes);
    if (!digest || !has(digest)) put(decode(bytes));
    return () => {};
  }
  let view = views.get(parentElement);
  if (!view) {
    view = new MapView(parentElement);
    views.set(parentElement, view);
  }
  view.update(data as ViewProps, args.setStateValue, args.setTriggerValue).catch((e) => console.error("vqviz map:", e));
  const mine = view;
  return () => {
    if (views.get(parentElement) === mine) views.delete(parentElement);
    mine.destroy();
  };
}

/** The payload's digest, read from its header without decoding the rest. */
function peekDigest(raw: Uint8Array): string | null {
  const n = raw[4] | (raw[5] << 8) | (raw[6] << 16) | (raw[7] << 24);
  const head = new TextDecoder().decode(raw.subarray(8, 8 + Math.min(n, 256)));
  const m = /"digest":\s*"([0-9a-f]+)"/.exec(head);
  return m ? m[1] : null;
}
