// What the pages share: building elements, formatting numbers and times, links.

/** An element: h("a", {href: "#/", class: "x"}, "text", child...). Attributes that are
 * null, undefined or false are left out; `on` takes {event: handler}. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "style") {
      Object.assign(el.style, value); // through CSSOM: the page's policy allows no inline style attributes
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** An SVG element (charts). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

/** Run `change` on `region`, keeping keyboard focus on the element with the same data-focus key. */
export function keepFocus(region, change) {
  const active = document.activeElement;
  const key = active && region.contains(active) ? active.dataset.focus : undefined;
  change();
  if (key !== undefined && !region.contains(document.activeElement)) {
    const again = region.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** Replace what `region` holds (focus kept as keepFocus does). */
export function fill(region, ...children) {
  keepFocus(region, () => {
    region.replaceChildren();
    append(region, children);
  });
}

export function age(seconds, now = Date.now() / 1000) {
  if (!seconds) return "-";
  const s = Math.max(0, Math.floor(now - seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function cpu(millis) {
  if (millis === null || millis === undefined) return "-";
  return millis >= 1000 && millis % 100 === 0 ? `${millis / 1000}` : `${millis}m`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "-";
  const units = [["Ti", 2 ** 40], ["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]];
  for (const [suffix, unit] of units) {
    if (n >= unit) {
      const v = n / unit;
      return `${v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)}${suffix}`;
    }
  }
  return `${n}`;
}

/** Tables (and URLs) by the kind an event names. */
export const TABLE_OF_KIND = {
  Pod: "pods",
  Deployment: "deployments",
  Node: "nodes",
  Service: "services",
  HorizontalPodAutoscaler: "hpas",
};

/** The link to an object's detail page; namespace "_" for nodes. */
export function objectHref(table, namespace, name) {
  return `#/object/${table}/${encodeURIComponent(namespace || "_")}/${encodeURIComponent(name)}`;
}

export function objectLink(table, namespace, name, text = name, attrs = {}) {
  return h("a", { href: objectHref(table, namespace, name), "data-focus": `${table}/${namespace}/${name}`, ...attrs }, text);
}

/** The pods table's key of a pod: `<namespace>.<name>`. */
export function podKey(namespace, name) {
  return `${namespace}.${name}`;
}

/** Does an object with these labels match a selector ({key: value})? */
export function matches(labels, selector) {
  const wanted = Object.entries(selector || {});
  return wanted.length > 0 && wanted.every(([k, v]) => (labels || {})[k] === v);
}

/** A bar of `used` against `total` with its label, e.g. CPU 120m / 2. */
export function meter(label, used, total, show, extra = null) {
  const ratio = total > 0 ? Math.min(1, used / total) : 0;
  const pct = Math.round(ratio * 100);
  const level = ratio > 0.9 ? "high" : ratio > 0.7 ? "mid" : "low";
  return h(
    "div",
    { class: "meter" },
    h("span", { class: "meter-label" }, label),
    h(
      "span",
      { class: "meter-bar", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
      h("span", { class: `meter-fill ${level}`, style: { width: `${pct}%` } }),
      extra,
    ),
    h("span", { class: "meter-value" }, show),
  );
}

export function badge(text, tone) {
  return h("span", { class: `badge ${tone}` }, text);
}
