/** Median and spread of repeated measurements; every figure in the report comes from here. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function summarize(values: number[]): Summary {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN, values: [] };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { n: v.length, median, min: v[0], max: v[v.length - 1], values };
}

/** Per-repetition ratios (a[i] / b[i], both measured in the same repetition), summarized. */
export function ratios(a: number[], b: number[]): Summary {
  return summarize(a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x)));
}

export function fmt(s: Summary, unit = '', digits = 0): string {
  if (s.n === 0) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)}, n=${s.n})`;
}

export function fmtRatio(s: Summary): string {
  return fmt(s, '×', 2);
}
