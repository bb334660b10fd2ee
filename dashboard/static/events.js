// The event stream, newest first, filtered by kind, namespace, type and text (kept in the URL).

import { TABLE_OF_KIND, age, clock, fill, h, objectLink } from "./dom.js";

const SHOWN = 300;

export function mount(root, store, params) {
  const filter = { kind: params.kind || "", namespace: params.namespace || "", type: params.type || "", q: params.q || "" };
  const kind = h("select", { id: "ev-kind", on: { change: () => set("kind", kind.value) } });
  const namespace = h("select", { id: "ev-ns", on: { change: () => set("namespace", namespace.value) } });
  const type = h(
    "select",
    { id: "ev-type", on: { change: () => set("type", type.value) } },
    h("option", { value: "" }, "any"),
    h("option", { value: "Normal" }, "Normal"),
    h("option", { value: "Warning" }, "Warning"),
  );
  type.value = filter.type;
  const text = h("input", {
    id: "ev-text",
    type: "search",
    placeholder: "reason, name or message",
    value: filter.q,
    "data-filter": true,
    autocomplete: "off",
    on: { input: () => set("q", text.value) },
  });
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const list = h("div", { class: "table-wrap" });
  root.append(
    h("h1", {}, "Events"),
    h(
      "form",
      { class: "filters", role: "search", on: { submit: (e) => e.preventDefault() } },
      h("label", { for: "ev-kind" }, "Kind ", kind),
      h("label", { for: "ev-ns" }, "Namespace ", namespace),
      h("label", { for: "ev-type" }, "Type ", type),
      h("label", { for: "ev-text", class: "grow" }, "Text ", text),
    ),
    count,
    list,
  );

  function set(field, value) {
    filter[field] = value;
    const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v)).toString();
    history.replaceState(null, "", `#/events${query ? `?${query}` : ""}`);
    update();
  }

  function options(select, values, current) {
    const wanted = ["", ...[...new Set([...values, current].filter(Boolean))].sort()];
    const have = [...select.options].map((o) => o.value);
    if (have.join("\n") !== wanted.join("\n")) {
      select.replaceChildren(...wanted.map((v) => h("option", { value: v }, v || "any")));
    }
    select.value = current;
  }

  function update() {
    options(kind, store.events.map((e) => e.kind), filter.kind);
    options(namespace, store.events.map((e) => e.namespace || "_"), filter.namespace);
    const q = filter.q.toLowerCase();
    const shown = [];
    let matching = 0;
    for (let i = store.events.length - 1; i >= 0; i--) {
      const e = store.events[i];
      if (filter.kind && e.kind !== filter.kind) continue;
      if (filter.namespace && (e.namespace || "_") !== filter.namespace) continue;
      if (filter.type && e.type !== filter.type) continue;
      if (q && !`${e.reason} ${e.name} ${e.message} ${e.source}`.toLowerCase().includes(q)) continue;
      matching++;
      if (shown.length < SHOWN) shown.push(e);
    }
    count.textContent = `${matching} of the latest ${store.events.length} events${matching > SHOWN ? ` (newest ${SHOWN} shown)` : ""}`;
    fill(list, eventsTable(shown, true));
  }
  return { update };
}

/** A table of events (newest first as given); `withObject`: a column naming what each is about. */
export function eventsTable(events, withObject) {
  if (!events.length) return h("p", { class: "empty" }, "No events.");
  return h(
    "table",
    { class: "events" },
    h(
      "thead",
      {},
      h("tr", {}, ["Age", "Type", "Reason", withObject ? "Object" : null, "Message"].filter(Boolean).map((c) => h("th", { scope: "col" }, c))),
    ),
    h(
      "tbody",
      {},
      events.map((e) =>
        h(
          "tr",
          { class: e.type === "Warning" ? "warning" : "", "data-event": e.id },
          h("td", { title: clock(e.time) }, age(e.time)),
          h("td", {}, e.type),
          h("td", {}, e.reason),
          withObject ? h("td", {}, eventObject(e)) : null,
          h("td", { class: "message" }, e.message),
        ),
      ),
    ),
  );
}

function eventObject(e) {
  const text = `${e.kind.toLowerCase()}/${e.namespace ? `${e.namespace}/` : ""}${e.name}`;
  const table = TABLE_OF_KIND[e.kind];
  return table ? objectLink(table, e.namespace || "_", e.name, text) : text;
}
