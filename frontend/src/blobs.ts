/**
 * Binary blobs that views share by digest: a decoder (its ONNX model) and the latents behind a map
 * (for decoding any spot of it in the browser). Packed by vqviz.web.blobs in Python:
 *   "VQB1" | uint32 header length | header JSON (UTF-8) | zero padding to a multiple of 8 | body.
 * The header names the blob (`digest`) and what it is (`kind`); each travels once per session in its
 * own store element, like the map's payload.
 */
import { keep, wait } from "./payload";

export interface BlobHeader {
  digest: string;
  kind: "decoder" | "latents";
  [key: string]: unknown;
}

export interface Blob8 {
  header: BlobHeader;
  body: Uint8Array; // 8-aligned: typed arrays may view it
}

const MAGIC = [0x56, 0x51, 0x42, 0x31]; // "VQB1"

export function isBlob(raw: Uint8Array): boolean {
  return MAGIC.every((b, i) => raw[i] === b);
}

export function decodeBlob(raw: Uint8Array): Blob8 {
  if (!isBlob(raw)) throw new Error("vqviz: not a VQB1 blob");
  const n = new DataView(raw.buffer, raw.byteOffset + 4, 4).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(raw.subarray(8, 8 + n))) as BlobHeader;
  const start = 8 + n + ((8 - ((8 + n) % 8)) % 8);
  // a copy: the message's buffer is not ours to keep, and the copy is aligned
  return { header, body: raw.slice(start) };
}

const blobs = new Map<string, Blob8>();
const waiting = new Map<string, Array<(b: Blob8) => void>>();

export const putBlob = (raw: Uint8Array): void => {
  const b = decodeBlob(raw);
  keep(blobs, waiting, b.header.digest, b, 6); // a decoder and a map's latents per page, or so
};
export const hasBlob = (digest: string): boolean => blobs.has(digest);
export const getBlob = (digest: string): Promise<Blob8> => wait(blobs, waiting, digest);

/** Ask for a blob again (``ask``), less and less often, until it has arrived: the page may lack it
 * (its element went before it was mounted), as it may lack a map's payload. */
export function watchBlob(digest: string, ask: () => void, first = 1500, most = 12000): void {
  let wait = first;
  const check = () => {
    if (blobs.has(digest)) return;
    ask();
    wait = Math.min(2 * wait, most);
    window.setTimeout(check, wait);
  };
  window.setTimeout(check, wait);
}
