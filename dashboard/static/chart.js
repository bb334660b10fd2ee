// A small inline SVG chart of an HPA's replicas over time: the scalings it decided (and the
// counts seen while this page was open) as a step line, what its metrics recommended as dots,
// and its min and max as dashed lines.

import { clock, svg } from "./dom.js";

const W = 440;
const H = 160;
const PAD = { left: 34, right: 12, top: 12, bottom: 24 };

/** The step line's points [{at, replicas}] from decisions and samples, starting at `start`. */
export function steps(hpa, samples, start, now) {
  const changes = [
    ...hpa.decisions.map((d) => ({ at: d.at, replicas: d.to })),
    ...samples.map((s) => ({ at: s.at, replicas: s.current })),
  ].sort((a, b) => a.at - b.at);
  const first = hpa.decisions.length ? hpa.decisions[0].from : changes.length ? changes[0].replicas : hpa.current ?? 0;
  const points = [{ at: start, replicas: first }];
  for (const c of changes) if (c.at >= start) points.push(c);
  points.push({ at: now, replicas: hpa.current ?? points[points.length - 1].replicas });
  return points;
}

export function chart(hpa, samples, now = Date.now() / 1000) {
  const times = [...hpa.decisions.map((d) => d.at), ...hpa.recommendations.map((r) => r.at), ...samples.map((s) => s.at)];
  const start = Math.min(now - 300, ...times);
  const line = steps(hpa, samples, start, now);
  const top = Math.max(hpa.max, ...line.map((p) => p.replicas), ...hpa.recommendations.map((r) => r.replicas), 1);
  const x = (t) => PAD.left + ((t - start) / Math.max(1, now - start)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  let d = `M${x(line[0].at).toFixed(1)},${y(line[0].replicas).toFixed(1)}`;
  for (let i = 1; i < line.length; i++) {
    d += ` H${x(line[i].at).toFixed(1)} V${y(line[i].replicas).toFixed(1)}`;
  }
  const guide = (value, label, cls) => [
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value), class: cls }),
    svg("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, document.createTextNode(`${value}`)),
    svg("text", { x: W - PAD.right, y: y(value) - 3, "text-anchor": "end", class: "axis" }, document.createTextNode(label)),
  ];
  const summary = `${hpa.name}: ${hpa.current ?? "?"} replicas now (min ${hpa.min}, max ${hpa.max}); ${hpa.decisions.length} scaling decision(s) shown`;
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": summary, "data-chart": `${hpa.namespace}/${hpa.name}` },
    svg("title", {}, document.createTextNode(summary)),
    svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom, class: "frame" }),
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "frame" }),
    svg("text", { x: PAD.left - 6, y: y(0) + 4, "text-anchor": "end", class: "axis" }, document.createTextNode("0")),
    guide(hpa.max, "max", "limit"),
    hpa.min > 0 && hpa.min !== hpa.max ? guide(hpa.min, "min", "limit") : null,
    svg("path", { d, class: "replicas" }),
    hpa.recommendations.map((r) =>
      svg("circle", { cx: x(r.at), cy: y(r.replicas), r: 3, class: "recommended" }, svg("title", {}, document.createTextNode(`${clock(r.at)}: ${r.replicas} recommended`))),
    ),
    hpa.decisions.map((dd) =>
      svg("circle", { cx: x(dd.at), cy: y(dd.to), r: 4, class: "decision" }, svg("title", {}, document.createTextNode(`${clock(dd.at)}: ${dd.from} → ${dd.to} (${dd.reason})`))),
    ),
    svg("text", { x: PAD.left, y: H - 6, class: "axis" }, document.createTextNode(clock(start))),
    svg("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "axis" }, document.createTextNode("now")),
  );
}
