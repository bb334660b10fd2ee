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
  const cards = new Map(); // node name -> its box
  const boxes = new Map(); // node name -> {sig, el}: its pods' list, kept while they look the same
  const placed = new Map(); // node name -> Map(pod key -> pod view), as last drawn
  const nodeOf = new Map(); // pod key -> the node it was drawn under ("" for none)
  const unplaced = new Map(); // pod key -> pod view, for pods on no known node

  /** File one pod under its node (or none) as the store holds it now; the nodes it left and
   * joined are added to `dirty`. */
  function place(key, dirty) {
    const pod = store.tables.pods.get(key);
    const before = nodeOf.get(key);
    if (before !== undefined) {
      (before ? placed.get(before) : unplaced)?.delete(key);
      dirty.add(before);
    }
    if (!pod) {
      nodeOf.delete(key);
      return;
    }
    const where = pod.node && store.tables.nodes.has(pod.node) ? pod.node : "";
    if (where && !placed.has(where)) placed.set(where, new Map());
    (where ? placed.get(where) : unplaced).set(key, pod);
    nodeOf.set(key, where);
    dirty.add(where);
  }

  // A change redraws the boxes of the nodes it touched, not the other thousand: with 10,000
  // pods on the page, drawing every box again for each batch of patches held the page still.
  function update(touched) {
    if (touched && !touched.has("pods") && !touched.has("nodes") && !touched.has("deployments")) return; // ticks: no ages here
    const dirty = new Set();
    if (!touched || touched.has("nodes")) {
      // Nodes come and go rarely: file every pod again when they do (or on a new snapshot).
      const known = touched ? [...touched].filter((t) => t.startsWith("nodes/")).map((t) => t.slice(6)) : null;
      const joinedOrLeft = !touched || known.some((n) => store.tables.nodes.has(n) !== cards.has(n));
      if (joinedOrLeft) {
        placed.clear();
        nodeOf.clear();
        unplaced.clear();
        cards.clear();
        boxes.clear();
        for (const key of store.tables.pods.keys()) place(key, dirty);
        for (const name of store.tables.nodes.keys()) dirty.add(name);
        dirty.add("");
      } else {
        for (const name of known) dirty.add(name);
      }
    }
    if (touched) {
      for (const t of touched) if (t.startsWith("pods/")) place(t.slice(5), dirty);
    }
    const byName = (a, b) => a.name.localeCompare(b.name);
    for (const name of dirty) {
      if (!name) continue;
      const node = store.tables.nodes.get(name);
      if (!node) {
        cards.delete(name);
        boxes.delete(name);
        continue;
      }
      const mine = [...(placed.get(name) || new Map()).values()].sort(byName);
      // A node's own change (a usage sample, every few seconds on every node) redraws its
      // header and meters, not the list of its pods.
      const sig = mine.map((p) => `${p.name}|${p.tone}|${p.status}|${p.ready}|${p.restarts}|${p.owner ? p.owner.name : ""}`).join(";");
      let list = boxes.get(name);
      if (!list || list.sig !== sig) {
        list = { sig, el: mine.length ? podBoxes(mine, false) : h("p", { class: "empty" }, "No pods.") };
        boxes.set(name, list);
      }
      cards.set(name, nodeCard(node, mine, list.el));
    }

    const nodes = store.rows("nodes");
    const ready = nodes.filter((n) => n.ready).length;
    let podCount = 0;
    let readyPods = 0;
    for (const pod of store.tables.pods.values()) {
      podCount += 1;
      if (pod.tone === "ready") readyPods += 1;
    }
    fill(
      summary,
      h("span", {}, h("strong", {}, `${ready}/${nodes.length}`), " nodes Ready"),
      h("span", {}, h("strong", {}, `${podCount}`), " pods", podCount ? ` (${readyPods} ready)` : ""),
      h("span", {}, h("strong", {}, `${store.tables.deployments.size}`), " deployments"),
    );

    const els = [...cards.keys()].sort().map((name) => cards.get(name));
    if (!nodes.length) els.push(h("p", { class: "empty" }, "No nodes have registered yet."));
    keepFocus(grid, () => syncChildren(grid, els));

    if (dirty.has("")) {
      if (unplaced.size) {
        const pods = [...unplaced.values()].sort(byName);
        fill(waiting, h("h2", {}, `Not on a node (${pods.length})`), podBoxes(pods, true));
      } else {
        fill(waiting);
      }
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

function nodeCard(node, pods, podList) {
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
    podList,
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
