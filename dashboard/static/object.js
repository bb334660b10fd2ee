// One object: its fields, the actions allowed on it, its pods, its events, a pod's log followed
// live, and its YAML as `shoal get KIND NAME -o yaml` prints it.

import { actionBar } from "./actions.js";
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
  const bar = h("div", { class: "action-bar" });
  const logs = table === "pods" ? podLog(namespace, name) : null;
  const pods = h("div", { class: "table-wrap" });
  const events = h("div", { class: "table-wrap" });
  const yaml = h("pre", { class: "yaml", tabindex: 0, "aria-label": `${kind} ${name} as YAML` }, "loading…");
  fill(
    root,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Cluster"), " / ", kind, namespace !== "_" ? ` / ${namespace}` : ""),
    h("h1", {}, h("span", { class: "muted" }, `${kind} `), name),
    bar,
    fields,
    h("h2", {}, "Pods"),
    pods,
    h("h2", {}, "Events"),
    events,
    logs ? logs.section : null,
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
    const same = bar.dataset.shown === JSON.stringify(view ? [view.cordoned, view.desired] : null);
    if (!same || !bar.firstChild) {
      fill(bar, actionBar(table, view));
      bar.dataset.shown = JSON.stringify(view ? [view.cordoned, view.desired] : null);
    }
    if (logs) logs.update(view);
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
  return { update, unmount: () => logs && logs.stop() };
}

/** A pod's log, followed as it is written (the last lines first), one container at a time. */
function podLog(namespace, name) {
  const KEPT = 200_000; // characters: a chatty pod must not grow the page without end
  const out = h("pre", { class: "logs", tabindex: 0, "aria-label": `log of pod ${name}` });
  const state = h("span", { class: "muted small", role: "status" });
  const picker = h("select", { "aria-label": "Container", hidden: true });
  const section = h("section", { class: "pod-log" }, h("h2", {}, "Logs ", picker, " ", state), out);
  let source = null;
  let following = null; // the container whose log is shown
  let containers = "";
  let asked = 0; // when the log was last asked for

  function follow(container) {
    if (source) source.close();
    following = container;
    out.textContent = "";
    state.textContent = "following…";
    source = new EventSource(`/api/logs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}?container=${encodeURIComponent(container)}`);
    source.addEventListener("chunk", (e) => {
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      const text = out.textContent + JSON.parse(e.data);
      out.textContent = text.length > KEPT ? text.slice(text.length - KEPT) : text;
      if (atEnd) out.scrollTop = out.scrollHeight;
      state.textContent = "following";
    });
    source.addEventListener("end", (e) => {
      state.textContent = JSON.parse(e.data);
      source.close(); // an ended log is not asked for again
    });
  }
  picker.addEventListener("change", () => follow(picker.value));

  function update(view) {
    if (!view) return;
    const names = view.containers || [];
    if (names.join(",") !== containers) {
      containers = names.join(",");
      picker.replaceChildren(...names.map((c) => h("option", { value: c }, c)));
      picker.hidden = names.length < 2;
    }
    // Follow once the pod has a node (no node: no log yet), and again, at most every few
    // seconds, after the stream ended for a pod still there (asked before its container
    // started, restarted, or its node came back).
    const ended = source && source.readyState === EventSource.CLOSED;
    const now = Date.now();
    if (view.node && (following === null || (ended && view.tone !== "done" && now - asked > 3000))) {
      asked = now;
      follow(following ?? names[0] ?? "");
      if (picker.value !== following && following) picker.value = following;
    }
  }
  return { section, update, stop: () => source && source.close() };
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
