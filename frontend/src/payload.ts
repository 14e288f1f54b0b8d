/**
 * The map's binary payload, as packed by vqviz_map.pack() in Python, and the page-wide store of
 * decoded payloads.
 *
 * Layout (little-endian):
 *   "VQM1" | uint32 header length | header JSON (UTF-8) | zero padding to a multiple of 8 |
 *   blobs, each at the 8-aligned offset its header entry gives (relative to the payload's start).
 *
 * The thumbnails travel apart, after the map's own element, so that the points are drawn before the
 * atlas has arrived:
 *   "VQA1" | uint32 digest length | digest (ASCII) | the image (PNG, WebP or JPEG).
 *
 * Both travel once per session, each in its own element (a "store"); the map element itself carries
 * only small JSON that names the payload by its digest. A change of colour, of marks or of selection
 * therefore never re-sends the points.
 */

export type DType = "float32" | "uint8" | "uint16" | "uint32";

export interface ColumnRef {
  offset: number;
  length: number; // elements
  dtype: DType;
}

export interface FieldHeader {
  name: string; // e.g. "label", "cluster"
  column: string; // the key of its codes in `columns`
  names: string[]; // code -> name
  colours: string[]; // code -> CSS colour (cycled when shorter than names)
  kind: "categorical" | "continuous";
  range?: [number, number]; // continuous fields: the values' range, for the legend
}

export interface Header {
  version: 1;
  digest: string;
  n: number; // points
  m: number; // background points (drawn first, in grey, never selected)
  kd_node?: number; // the spatial index's leaf size, when the payload carries its order (column "kd")
  domain: [[number, number], [number, number]]; // data coordinates of NDC -1..1 on x and y
  columns: Record<string, ColumnRef>;
  fields: FieldHeader[];
  atlas: null | {
    digest: string; // of the atlas's own payload
    length: number; // bytes
    mime: string;
    thumb: [number, number]; // width, height of one thumbnail, px
    cols: number; // thumbnails per atlas row
    shrunk?: number; // the thumbnails are the images shrunk this many times
  };
}

export interface Payload {
  header: Header;
  x: Float32Array; // NDC, n + m: the background's points first
  y: Float32Array;
  thumb: Uint32Array | null; // row -> atlas cell (identity when null)
  kd: Uint16Array | Uint32Array | null; // the points in the order of their k-d tree (see spatialIndex)
  fields: Map<string, { header: FieldHeader; codes: ArrayLike<number> }>;
  atlas(): Promise<ImageBitmap | null>; // once its bytes have arrived; decoded once, on first call
  bytes: number;
}

const MAGIC = [0x56, 0x51, 0x4d, 0x31]; // "VQM1"
const ATLAS_MAGIC = [0x56, 0x51, 0x41, 0x31]; // "VQA1"

export function isAtlas(raw: Uint8Array): boolean {
  return ATLAS_MAGIC.every((b, i) => raw[i] === b);
}

function view(buf: Uint8Array, ref: ColumnRef): Float32Array | Uint8Array | Uint16Array | Uint32Array {
  const at = buf.byteOffset + ref.offset;
  switch (ref.dtype) {
    case "float32":
      return new Float32Array(buf.buffer, at, ref.length);
    case "uint8":
      return new Uint8Array(buf.buffer, at, ref.length);
    case "uint16":
      return new Uint16Array(buf.buffer, at, ref.length);
    case "uint32":
      return new Uint32Array(buf.buffer, at, ref.length);
  }
}

export function decode(raw: Uint8Array): Payload {
  for (let i = 0; i < 4; i++) if (raw[i] !== MAGIC[i]) throw new Error("vqviz map: not a VQM1 payload");
  // typed-array views need aligned offsets: protobuf hands us a view into the message's buffer
  const buf = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  const headerLength = new DataView(buf.buffer, buf.byteOffset + 4, 4).getUint32(0, true);
  const header: Header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLength)));
  const cols = header.columns;
  const x = view(buf, cols.x) as Float32Array;
  const y = view(buf, cols.y) as Float32Array;
  const thumb = cols.thumb ? (view(buf, cols.thumb) as Uint32Array) : null;
  const kd = cols.kd ? (view(buf, cols.kd) as Uint16Array | Uint32Array) : null;
  const fields = new Map<string, { header: FieldHeader; codes: ArrayLike<number> }>();
  for (const f of header.fields) fields.set(f.name, { header: f, codes: view(buf, cols[f.column]) });
  let decoded: Promise<ImageBitmap | null> | null = null;
  return {
    header,
    x,
    y,
    thumb,
    kd,
    fields,
    bytes: raw.byteLength,
    atlas() {
      const a = header.atlas;
      if (!decoded) {
        decoded = a
          ? wait(atlases, atlasWaiting, a.digest)
              .then((bytes) => createImageBitmap(new Blob([bytes as BlobPart], { type: a.mime })))
              .catch((e) => {
                console.error("vqviz map: the thumbnail atlas cannot be decoded", e);
                return null;
              })
          : Promise.resolve(null);
      }
      return decoded;
    },
  };
}

/**
 * The payload's spatial index as a KDBush buffer (version 1, float32 coordinates), which
 * regl-scatterplot takes as `draw(points, { spatialIndex })`: the ids in the order Python's
 * `kd_order` computed, and each one's position. One pass over the points, instead of the library
 * indexing them itself.
 */
export function spatialIndex(p: Payload): ArrayBuffer | undefined {
  const kd = p.kd;
  if (!kd || !p.header.kd_node) return undefined;
  const n = kd.length;
  const idBytes = n * (n < 65536 ? 2 : 4);
  const pad = (8 - (idBytes % 8)) % 8;
  const buf = new ArrayBuffer(8 + idBytes + pad + n * 8);
  new Uint8Array(buf, 0, 2).set([0xdb, (1 << 4) + 7]); // KDBush magic; format 1, Float32Array (type 7)
  new Uint16Array(buf, 2, 1)[0] = p.header.kd_node;
  new Uint32Array(buf, 4, 1)[0] = n;
  (n < 65536 ? new Uint16Array(buf, 8, n) : new Uint32Array(buf, 8, n)).set(kd);
  const coords = new Float32Array(buf, 8 + idBytes + pad, 2 * n);
  for (let i = 0; i < n; i++) {
    const j = kd[i];
    coords[2 * i] = p.x[j];
    coords[2 * i + 1] = p.y[j];
  }
  return buf;
}

/** An atlas payload's digest and image bytes. */
export function decodeAtlas(raw: Uint8Array): [string, Uint8Array] {
  const n = raw[4] | (raw[5] << 8) | (raw[6] << 16) | (raw[7] << 24);
  return [new TextDecoder().decode(raw.subarray(8, 8 + n)), raw.subarray(8 + n)];
}

// ----- the page-wide stores: payloads and atlases by digest, and the views waiting for one -----
const KEEP = 3;
const store = new Map<string, Payload>();
const waiting = new Map<string, Array<(p: Payload) => void>>();
const atlases = new Map<string, Uint8Array>();
const atlasWaiting = new Map<string, Array<(p: Uint8Array) => void>>();

export function keep<T>(
  map: Map<string, T>,
  queue: Map<string, Array<(v: T) => void>>,
  digest: string,
  value: T,
  most = KEEP,
): void {
  map.delete(digest);
  map.set(digest, value);
  while (map.size > most) map.delete(map.keys().next().value as string);
  for (const resolve of queue.get(digest) ?? []) resolve(value);
  queue.delete(digest);
}

export function wait<T>(map: Map<string, T>, queue: Map<string, Array<(v: T) => void>>, digest: string): Promise<T> {
  const found = map.get(digest);
  if (found) return Promise.resolve(found);
  return new Promise((resolve) => {
    const list = queue.get(digest) ?? [];
    list.push(resolve);
    queue.set(digest, list);
  });
}

export const put = (payload: Payload): void => keep(store, waiting, payload.header.digest, payload);
export const has = (digest: string): boolean => store.has(digest);
export const get = (digest: string): Promise<Payload> => wait(store, waiting, digest);
export const putAtlas = (raw: Uint8Array): void => {
  const [digest, bytes] = decodeAtlas(raw);
  keep(atlases, atlasWaiting, digest, bytes.slice()); // a copy: the message's buffer is not ours to keep
};
export const hasAtlas = (digest: string): boolean => atlases.has(digest);
