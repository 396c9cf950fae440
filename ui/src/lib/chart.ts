// The balance-over-time chart: history rows → an SVG polyline, computed without the DOM.

export type Point = { time: number; balance: number };

/** Oldest first, one point per transaction, from the history (which comes newest first). */
export function balanceSeries(history: { occurred_at: string; balance_after: { amount_minor: number } }[]): Point[] {
  return history
    .map((row) => ({ time: Date.parse(row.occurred_at), balance: row.balance_after.amount_minor }))
    .filter((point) => !Number.isNaN(point.time))
    .sort((a, b) => a.time - b.time);
}

/** `x,y` pairs scaled into a width × height box (y grows downwards; 0 sits at the bottom). */
export function polyline(points: Point[], width: number, height: number): string {
  if (points.length === 0) return "";
  const times = points.map((p) => p.time);
  const [first, last] = [Math.min(...times), Math.max(...times)];
  const top = Math.max(...points.map((p) => p.balance), 0);
  const spanX = last - first || 1;
  const spanY = top || 1;
  return points
    .map((p) => {
      const x = points.length === 1 ? width / 2 : ((p.time - first) / spanX) * width;
      const y = height - (p.balance / spanY) * height;
      return `${round(x)},${round(y)}`;
    })
    .join(" ");
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
