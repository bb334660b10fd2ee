// Deployments, with replicas ready / updated / desired drawn live, and the services in front of them.

import { age, badge, fill, h, objectHref, objectLink } from "./dom.js";

export function mount(root, store) {
  const list = h("div", { class: "deployments" });
  const services = h("div", { class: "table-wrap" });
  root.append(h("h1", {}, "Deployments"), list, h("h2", {}, "Services"), services);

  function update() {
    const pods = store.rows("pods");
    const deployments = store.rows("deployments").sort(byName);
    fill(
      list,
      deployments.length
        ? deployments.map((d) => card(d, pods.filter((p) => p.owner && p.owner.kind === "Deployment" && p.owner.name === d.name && p.namespace === d.namespace)))
        : h("p", { class: "empty" }, "No deployments. ", h("code", {}, "shoal apply -f app.yaml"), " makes one."),
    );
    const rows = store.rows("services").sort(byName);
    fill(
      services,
      rows.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Namespace", "Name", "Type", "Cluster IP", "Ports", "Endpoints", "Age"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              rows.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", {}, s.namespace),
                  h("td", {}, objectLink("services", s.namespace, s.name)),
                  h("td", {}, s.type),
                  h("td", {}, s.clusterIP || "-"),
                  h("td", {}, s.ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}`).join(", ")),
                  h("td", {}, `${s.ready.length} ready`, s.notReady.length ? `, ${s.notReady.length} not ready` : ""),
                  h("td", {}, age(s.created)),
                ),
              ),
            ),
          )
        : h("p", { class: "empty" }, "No services."),
    );
  }
  return { update };
}

function byName(a, b) {
  return a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
}

/** One bar of `count` out of `of` (the desired replicas), as cells. */
function replicaBar(label, count, of, tone) {
  const cells = Math.max(of, count);
  const shown = Math.min(cells, 50);
  const bar = h(
    "span",
    { class: "cells", role: "img", "aria-label": `${label}: ${count} of ${of}` },
    Array.from({ length: shown }, (_, i) => h("span", { class: `cell ${i < count ? tone : "missing"}${i >= of ? " surplus" : ""}` })),
  );
  return h("div", { class: "replica-row" }, h("span", { class: "replica-label" }, label), bar, h("span", { class: "replica-count" }, `${count}/${of}`));
}

function card(d, pods) {
  const progressing =
    d.progressing === "False" ? badge(d.progressingReason || "Stalled", "bad") : d.ready >= d.desired && d.updated >= d.desired ? badge("Available", "ok") : badge("Progressing", "warn");
  return h(
    "section",
    { class: "deployment", "data-deployment": `${d.namespace}/${d.name}`, "aria-label": `deployment ${d.namespace}/${d.name}` },
    h(
      "header",
      {},
      h("h2", {}, objectLink("deployments", d.namespace, d.name)),
      h("span", { class: "muted" }, d.namespace),
      progressing,
      d.paused ? badge("Paused", "warn") : null,
      h("span", { class: "muted" }, `revision ${d.revision}`),
    ),
    replicaBar("Ready", d.ready, d.desired, "ready"),
    replicaBar("Updated", d.updated, d.desired, "updated"),
    replicaBar("Replicas", d.replicas, d.desired, "present"),
    h(
      "ul",
      { class: "pods small", "aria-label": "pods" },
      pods
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((p) =>
          h("li", {}, h("a", { class: `pod tone-${p.tone}`, href: objectHref("pods", p.namespace, p.name), title: `${p.name}: ${p.status}`, "aria-label": `${p.name}: ${p.status}`, "data-focus": `pod/${p.namespace}/${p.name}` })),
        ),
    ),
    h("p", { class: "muted images" }, d.images.join(", ")),
    d.progressingMessage ? h("p", { class: "muted" }, d.progressingMessage) : null,
  );
}
