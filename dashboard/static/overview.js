// The cluster at a glance: each node a box holding its pods, with its use against capacity.

import { badge, bytes, cpu, fill, h, keepFocus, meter, objectHref, objectLink } from "./dom.js";

const TONES = [
  ["ready", "Ready"],
  ["starting", "Starting / not ready"],
  ["pending", "Pending"],
  ["failed", "Failed / crashing"],
  ["done", "Completed"],
  ["stopping", "Terminating"],
];

export function mount(root, store) {
  const summary = h("div", { class: "summary", "aria-live": "polite" });
  const grid = h("div", { class: "nodes" });
  const waiting = h("section", { class: "unscheduled", "aria-label": "Pods without a node" });
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Pod colours" },
    TONES.map(([tone, text]) => h("li", {}, h("span", { class: `swatch tone-${tone}` }), text)),
  );
  root.append(h("h1", {}, "Cluster"), summary, legend, grid, waiting);
  const cards = new Map(); // node name -> {sig, el}

  function update() {
    const nodes = store.rows("nodes").sort((a, b) => a.name.localeCompare(b.name));
    const pods = store.rows("pods").sort((a, b) => a.name.localeCompare(b.name));
    const byNode = new Map(nodes.map((n) => [n.name, []]));
    const unplaced = [];
    for (const pod of pods) {
      if (pod.node && byNode.has(pod.node)) byNode.get(pod.node).push(pod);
      else unplaced.push(pod);
    }
    const ready = nodes.filter((n) => n.ready).length;
    const tones = {};
    for (const pod of pods) tones[pod.tone] = (tones[pod.tone] || 0) + 1;
    fill(
      summary,
      h("span", {}, h("strong", {}, `${ready}/${nodes.length}`), " nodes Ready"),
      h("span", {}, h("strong", {}, `${pods.length}`), " pods", pods.length ? ` (${tones.ready || 0} ready)` : ""),
      h("span", {}, h("strong", {}, `${store.tables.deployments.size}`), " deployments"),
    );

    const seen = new Set();
    const els = [];
    for (const node of nodes) {
      const mine = byNode.get(node.name);
      const sig = JSON.stringify([node, mine]);
      let card = cards.get(node.name);
      if (!card || card.sig !== sig) {
        card = { sig, el: nodeCard(node, mine) };
        cards.set(node.name, card);
      }
      seen.add(node.name);
      els.push(card.el);
    }
    for (const name of [...cards.keys()]) if (!seen.has(name)) cards.delete(name);
    if (!nodes.length) els.push(h("p", { class: "empty" }, "No nodes have registered yet."));
    keepFocus(grid, () => syncChildren(grid, els));

    if (unplaced.length) {
      fill(waiting, h("h2", {}, `Not on a node (${unplaced.length})`), podBoxes(unplaced, true));
    } else {
      fill(waiting);
    }
  }
  return { update };
}

/** Put exactly `els` in `parent`, in order, moving only what moved (focus and scroll stay). */
function syncChildren(parent, els) {
  els.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > els.length) parent.lastElementChild.remove();
}

function nodeCard(node, pods) {
  const state = node.ready === true ? badge("Ready", "ok") : node.ready === false ? badge("NotReady", "bad") : badge("Unknown", "warn");
  const usage = node.usage;
  const requested = pods.reduce((acc, p) => [acc[0] + p.requests.cpu, acc[1] + p.requests.memory], [0, 0]);
  const capCpu = usage ? usage.capacityCpu : node.capacity.cpu;
  const capMem = usage ? usage.capacityMemory : node.capacity.memory;
  const mark = (value, total) => {
    if (!total) return null;
    const el = h("span", { class: "meter-request", title: "requested" });
    el.style.left = `${Math.min(100, (value / total) * 100)}%`;
    return el;
  };
  return h(
    "section",
    { class: `node ${node.ready === true ? "" : "not-ready"}`, "data-node": node.name, "aria-label": `node ${node.name}` },
    h(
      "header",
      {},
      h("h2", {}, objectLink("nodes", "_", node.name)),
      state,
      node.cordoned ? badge(node.draining ? "Draining" : "Cordoned", "warn") : null,
    ),
    h(
      "div",
      { class: "meters" },
      meter(
        "CPU",
        usage ? usage.cpu : 0,
        capCpu,
        usage ? `${cpu(usage.cpu)} / ${cpu(capCpu)}` : `- / ${cpu(capCpu)}`,
        mark(requested[0], capCpu),
      ),
      meter(
        "Memory",
        usage ? usage.memory : 0,
        capMem,
        usage ? `${bytes(usage.memory)} / ${bytes(capMem)}` : `- / ${bytes(capMem)}`,
        mark(requested[1], capMem),
      ),
      meter("Pods", pods.length, node.capacity.pods, `${pods.length} / ${node.capacity.pods}`),
    ),
    pods.length ? podBoxes(pods, false) : h("p", { class: "empty" }, "No pods."),
  );
}

function podBoxes(pods, withMessage) {
  return h(
    "ul",
    { class: "pods" },
    pods.map((pod) => {
      const short = pod.name.split("-").slice(-1)[0];
      const text = `${pod.namespace}/${pod.name}: ${pod.status}, ready ${pod.ready}, restarts ${pod.restarts}${pod.message ? `, ${pod.message}` : ""}`;
      return h(
        "li",
        {},
        h(
          "a",
          {
            class: `pod tone-${pod.tone}`,
            href: objectHref("pods", pod.namespace, pod.name),
            "data-pod": `${pod.namespace}/${pod.name}`,
            "data-focus": `pod/${pod.namespace}/${pod.name}`,
            title: text,
            "aria-label": text,
          },
          h("span", { class: "pod-owner" }, pod.owner ? pod.owner.name : pod.name),
          h("span", { class: "pod-id" }, short),
          withMessage && pod.message ? h("span", { class: "pod-message" }, pod.message) : null,
        ),
      );
    }),
  );
}
