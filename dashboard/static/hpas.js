// Horizontal pod autoscalers: their targets, readings and a chart of replicas over time.

import { age, badge, clock, fill, h, objectLink } from "./dom.js";
import { chart } from "./chart.js";

export function mount(root, store) {
  const list = h("div", { class: "hpas" });
  root.append(h("h1", {}, "Autoscalers"), list);

  function update() {
    const hpas = store.rows("hpas").sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    fill(list, hpas.length ? hpas.map((hpa) => card(hpa, store.history.get(`${hpa.namespace}.${hpa.name}`) || [])) : h("p", { class: "empty" }, "No horizontal pod autoscalers."));
  }
  return { update };
}

export function card(hpa, samples) {
  const target = hpa.target.kind === "Deployment" ? objectLink("deployments", hpa.namespace, hpa.target.name, `${hpa.target.kind}/${hpa.target.name}`) : `${hpa.target.kind}/${hpa.target.name}`;
  return h(
    "section",
    { class: "hpa", "data-hpa": `${hpa.namespace}/${hpa.name}`, "aria-label": `autoscaler ${hpa.namespace}/${hpa.name}` },
    h(
      "header",
      {},
      h("h2", {}, objectLink("hpas", hpa.namespace, hpa.name)),
      h("span", { class: "muted" }, hpa.namespace),
      hpa.current === null ? badge("no status yet", "warn") : badge(`${hpa.current} → ${hpa.desired}`, hpa.current === hpa.desired ? "ok" : "warn"),
    ),
    h(
      "dl",
      { class: "fields" },
      h("dt", {}, "Scales"),
      h("dd", {}, target),
      h("dt", {}, "Replicas"),
      h("dd", {}, `min ${hpa.min}, max ${hpa.max}, current ${hpa.current ?? "-"}, desired ${hpa.desired ?? "-"}`),
      h("dt", {}, "Metrics"),
      h("dd", {}, hpa.readings.length ? hpa.readings.map((r) => `${r.metric}: ${r.current}/${r.target}`).join(", ") : "-"),
      h("dt", {}, "Last scaled"),
      h("dd", {}, hpa.lastScaleTime ? `${age(hpa.lastScaleTime)} ago (${clock(hpa.lastScaleTime)})` : "never"),
    ),
    hpa.message ? h("p", { class: "muted" }, hpa.message) : null,
    chart(hpa, samples),
    h("p", { class: "legend-line muted" }, h("span", { class: "key replicas" }), "replicas ", h("span", { class: "key decision" }), "decision ", h("span", { class: "key recommended" }), "recommendation"),
  );
}
