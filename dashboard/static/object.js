// One object: its fields, its pods, its events, and its YAML as `shoal get KIND NAME -o yaml` prints it.

import { TABLE_OF_KIND, age, badge, bytes, cpu, fill, h, matches, objectLink, podKey } from "./dom.js";
import { eventsTable } from "./events.js";
import { card as hpaCard } from "./hpas.js";

const KIND_OF_TABLE = Object.fromEntries(Object.entries(TABLE_OF_KIND).map(([kind, table]) => [table, kind]));

export function mount(root, store, params) {
  const { table, name } = params;
  const namespace = table === "nodes" ? "_" : params.namespace;
  const key = table === "nodes" ? name : podKey(namespace, name);
  const kind = KIND_OF_TABLE[table] || table;
  const fields = h("div", { class: "object-fields" });
  const pods = h("div", { class: "table-wrap" });
  const events = h("div", { class: "table-wrap" });
  const yaml = h("pre", { class: "yaml", tabindex: 0, "aria-label": `${kind} ${name} as YAML` }, "loading…");
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Cluster"), " / ", kind, namespace !== "_" ? ` / ${namespace}` : ""),
    h("h1", {}, h("span", { class: "muted" }, `${kind} `), name),
    fields,
    h("h2", {}, "Pods"),
    pods,
    h("h2", {}, "Events"),
    events,
    h("h2", {}, "YAML ", h("span", { class: "muted small" }, `(shoal get ${table} ${name}${namespace !== "_" ? ` -n ${namespace}` : ""} -o yaml)`)),
    yaml,
  );

  let fetching = false;
  let again = false;
  async function load() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch(`/api/objects/${table}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
      const body = await response.json();
      const text = response.ok ? body.yaml : body.error;
      if (yaml.textContent !== text) yaml.textContent = text;
      yaml.classList.toggle("gone", !response.ok);
    } catch (err) {
      yaml.textContent = `could not load: ${err}`;
    } finally {
      fetching = false;
      if (again) {
        again = false;
        load();
      }
    }
  }

  function update(touched) {
    const view = store.tables[table] ? store.tables[table].get(key) : undefined;
    if (!touched || touched.has(`${table}/${key}`) || touched.has("tick")) load(); // ticks: status fields the view leaves out
    if (!view) {
      fill(fields, h("p", { class: "empty" }, `${kind} ${name} is not in the cluster (any more).`));
    } else {
      fill(fields, describe(table, view, store));
    }
    const mine = view ? podsOf(table, view, store) : [];
    fill(pods, podsTable(mine, table !== "nodes"));
    const names = new Set(mine.map((p) => p.name));
    const related = store.events
      .filter(
        (e) =>
          (e.kind === kind && e.name === name && (table === "nodes" || e.namespace === namespace)) ||
          (e.kind === "Pod" && names.has(e.name) && (table === "nodes" || e.namespace === namespace)),
      )
      .reverse()
      .slice(0, 200);
    fill(events, eventsTable(related, table !== "pods"));
  }
  return { update };
}

function podsOf(table, view, store) {
  const all = store.rows("pods");
  const sorted = (pods) => pods.sort((a, b) => a.name.localeCompare(b.name));
  if (table === "pods") return [view];
  if (table === "nodes") return sorted(all.filter((p) => p.node === view.name));
  if (table === "deployments") return sorted(all.filter((p) => p.namespace === view.namespace && p.owner && p.owner.kind === "Deployment" && p.owner.name === view.name));
  if (table === "services") return sorted(all.filter((p) => p.namespace === view.namespace && matches(p.labels, view.selector)));
  if (table === "hpas") return sorted(all.filter((p) => p.namespace === view.namespace && p.owner && p.owner.kind === view.target.kind && p.owner.name === view.target.name));
  return [];
}

function podsTable(pods, withNode) {
  if (!pods.length) return h("p", { class: "empty" }, "No pods.");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ["Name", "Status", "Ready", "Restarts", "Age", withNode ? "Node" : null, "IP"].filter(Boolean).map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      pods.map((p) =>
        h(
          "tr",
          { "data-pod": `${p.namespace}/${p.name}` },
          h("td", {}, objectLink("pods", p.namespace, p.name)),
          h("td", {}, h("span", { class: `dot tone-${p.tone}` }), p.status),
          h("td", {}, p.ready),
          h("td", {}, `${p.restarts}`),
          h("td", {}, age(p.created)),
          withNode ? h("td", {}, p.node ? objectLink("nodes", "_", p.node) : "-") : null,
          h("td", {}, p.ip || "-"),
        ),
      ),
    ),
  );
}

function list(pairs) {
  return h(
    "dl",
    { class: "fields" },
    pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

function labels(labels) {
  const entries = Object.entries(labels || {});
  return entries.length ? entries.map(([k, v]) => h("code", { class: "label" }, `${k}=${v}`)) : "-";
}

function describe(table, v, store) {
  if (table === "pods") {
    return list([
      ["Status", [h("span", { class: `dot tone-${v.tone}` }), v.status]],
      ["Ready", v.ready],
      ["Restarts", `${v.restarts}`],
      ["Node", v.node ? objectLink("nodes", "_", v.node) : "-"],
      ["IP", v.ip || "-"],
      ["Owner", v.owner ? (v.owner.kind === "Deployment" ? objectLink("deployments", v.namespace, v.owner.name, `${v.owner.kind}/${v.owner.name}`) : `${v.owner.kind}/${v.owner.name}`) : "-"],
      ["Requests", `cpu ${cpu(v.requests.cpu)}, memory ${bytes(v.requests.memory)}`],
      ["Labels", labels(v.labels)],
      ["Age", age(v.created)],
      v.message ? ["Waiting", v.message] : null,
    ]);
  }
  if (table === "deployments") {
    return list([
      ["Replicas", `${v.desired} desired, ${v.updated} updated, ${v.ready} ready, ${v.available} available`],
      ["Rollout", [v.progressing === "False" ? badge(v.progressingReason || "Stalled", "bad") : badge(v.progressingReason || v.progressing, "ok"), v.paused ? badge("Paused", "warn") : null, ` revision ${v.revision}`]],
      ["Selector", labels(v.selector)],
      ["Images", v.images.join(", ")],
      ["Age", age(v.created)],
      v.progressingMessage ? ["Message", v.progressingMessage] : null,
    ]);
  }
  if (table === "nodes") {
    return list([
      ["Ready", [v.ready === true ? badge("Ready", "ok") : badge(v.ready === false ? "NotReady" : "Unknown", "bad"), ` ${v.reason || ""}`, v.since ? ` (${age(v.since)})` : ""]],
      ["Scheduling", v.cordoned ? (v.draining ? "draining" : "cordoned") : "enabled"],
      ["Address", v.address || "-"],
      ["Capacity", `cpu ${cpu(v.capacity.cpu)}, memory ${bytes(v.capacity.memory)}, ${v.capacity.pods} pods`],
      ["Usage", v.usage ? `cpu ${cpu(v.usage.cpu)}, memory ${bytes(v.usage.memory)} (${age(v.usage.at)} ago)` : "no sample yet"],
      ["Runtime", v.runtime || "-"],
      ["Labels", labels(v.labels)],
      ["Up", age(v.started)],
    ]);
  }
  if (table === "services") {
    return list([
      ["Type", v.type],
      ["Cluster IP", v.clusterIP || "-"],
      ["Ports", v.ports.map((p) => `${p.name ? `${p.name} ` : ""}${p.port}${p.nodePort ? ` (node port ${p.nodePort})` : ""}`).join(", ") || "-"],
      ["Selector", labels(v.selector)],
      ["Endpoints", `${v.ready.length} ready${v.notReady.length ? `, not ready: ${v.notReady.join(", ")}` : ""}`],
      ["Age", age(v.created)],
    ]);
  }
  if (table === "hpas") return hpaCard(v, store.history.get(podKey(v.namespace, v.name)) || []);
  return list([]);
}
