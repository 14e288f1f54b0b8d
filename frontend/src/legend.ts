/** The map's legend: a swatch per category (a click hides or shows its points), or a colour ramp. */
import { el } from "./dom";
import type { FieldHeader } from "./payload";

/** Fill ``container`` with the legend of ``field`` (nothing without one); more than ``most``
 * categories get a note instead. ``toggle`` is called with a category's code on a click. */
export function renderLegend(
  container: HTMLElement,
  field: FieldHeader | undefined,
  continuous: boolean,
  most: number,
  toggle: (code: number, item: HTMLElement) => void,
): void {
  container.replaceChildren();
  if (!field) return;
  const name = field.name;
  const names = field.names;
  if (continuous) {
    const r = field.range ?? [0, 1];
    const bar = el("div", "vqm-ramp", container);
    bar.style.background = `linear-gradient(to right, ${field.colours.join(",")})`;
    el("span", "vqm-ramp-label", container).textContent = `${name}: ${r[0].toPrecision(3)} … ${r[1].toPrecision(3)}`;
    return;
  }
  if (names.length > most) {
    el("span", "vqm-legend-note", container).textContent = `${names.length} ${name} values: hover a point to see its own`;
    return;
  }
  const pal = field.colours;
  names.forEach((label, code) => {
    const item = el("button", "vqm-legend-item", container);
    item.type = "button";
    item.dataset.code = String(code);
    el("span", "vqm-swatch", item).style.background = pal[code % pal.length];
    el("span", "vqm-legend-label", item).textContent = label;
    item.addEventListener("click", () => toggle(code, item));
  });
}
