// Graph layout for the dashboard: nodes start on a circle (by id), then a
// short Fruchterman-Reingold run pulls linked nodes together. Deterministic,
// and cached per (group, nodes, edges), so every peer of a group that sees
// the same mesh draws it the same way.
const cache = new Map();

export function layout(group, nodes, edges, W, H) {
  const key = `${group}|${nodes.join(',')}|${edges.map(([a, b]) => `${a}-${b}`).sort().join(',')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const n = nodes.length;
  const cx = W / 2, cy = H / 2, R = Math.min(W, H) / 2 - 22;
  const p = nodes.map((_, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, n) - Math.PI / 2;
    return [cx + R * Math.cos(a), cy + R * Math.sin(a)];
  });
  const index = new Map(nodes.map((id, i) => [id, i]));
  const links = edges.filter(([a, b]) => index.has(a) && index.has(b)).map(([a, b]) => [index.get(a), index.get(b)]);
  if (n > 2) {
    const k = Math.sqrt((W * H) / n) * 0.75;
    let temp = W / 8;
    for (let iter = 0; iter < 250; ++iter) {
      const d = p.map(() => [0, 0]);
      for (let i = 0; i < n; ++i) {
        for (let j = i + 1; j < n; ++j) {
          let dx = p[i][0] - p[j][0], dy = p[i][1] - p[j][1];
          const dist = Math.max(0.01, Math.hypot(dx, dy));
          const f = (k * k) / dist;
          dx /= dist; dy /= dist;
          d[i][0] += dx * f; d[i][1] += dy * f;
          d[j][0] -= dx * f; d[j][1] -= dy * f;
        }
      }
      for (const [i, j] of links) {
        let dx = p[i][0] - p[j][0], dy = p[i][1] - p[j][1];
        const dist = Math.max(0.01, Math.hypot(dx, dy));
        const f = (dist * dist) / k;
        dx /= dist; dy /= dist;
        d[i][0] -= dx * f; d[i][1] -= dy * f;
        d[j][0] += dx * f; d[j][1] += dy * f;
      }
      for (let i = 0; i < n; ++i) {
        // A weak pull to the centre keeps unlinked nodes on the canvas.
        d[i][0] += (cx - p[i][0]) * 0.05; d[i][1] += (cy - p[i][1]) * 0.05;
        const len = Math.max(0.01, Math.hypot(d[i][0], d[i][1]));
        const step = Math.min(len, temp);
        p[i][0] = Math.min(W - 16, Math.max(16, p[i][0] + (d[i][0] / len) * step));
        p[i][1] = Math.min(H - 16, Math.max(16, p[i][1] + (d[i][1] / len) * step));
      }
      temp *= 0.97;
    }
  }
  // Fill the canvas: scale the drawing's bounding box to the margins.
  if (n > 1) {
    const m = 20;
    const xs = p.map((q) => q[0]), ys = p.map((q) => q[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const s = Math.min((W - 2 * m) / Math.max(1, x1 - x0), (H - 2 * m) / Math.max(1, y1 - y0));
    const ox = (W - s * (x1 - x0)) / 2, oy = (H - s * (y1 - y0)) / 2;
    for (const q of p) { q[0] = ox + (q[0] - x0) * s; q[1] = oy + (q[1] - y0) * s; }
  }
  const out = new Map(nodes.map((id, i) => [id, p[i]]));
  if (cache.size > 200) cache.clear();
  cache.set(key, out);
  return out;
}
