/** Small DOM and scale helpers of the map. */

/** The subset of the D3 linear scale that regl-scatterplot uses, plus invert: data <-> pixels. */
export interface Scale {
  (v: number): number;
  domain(): number[];
  domain(d: number[]): Scale;
  range(): number[];
  range(r: number[]): Scale;
  invert(p: number): number;
  copy(): Scale;
}

export function linear(d: number[], r: number[] = [0, 1]): Scale {
  let domain = [d[0], d[1]];
  let range = [r[0], r[1]];
  const s = ((v: number) =>
    range[0] + ((v - domain[0]) / (domain[1] - domain[0])) * (range[1] - range[0])) as Scale;
  s.domain = ((v?: number[]) => {
    if (v === undefined) return domain.slice();
    domain = [v[0], v[1]];
    return s;
  }) as Scale["domain"];
  s.range = ((v?: number[]) => {
    if (v === undefined) return range.slice();
    range = [v[0], v[1]];
    return s;
  }) as Scale["range"];
  s.invert = (p: number) => domain[0] + ((p - range[0]) / (range[1] - range[0])) * (domain[1] - domain[0]);
  s.copy = () => linear(domain, range);
  return s;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent?: Node): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  parent?.appendChild(e);
  return e;
}

