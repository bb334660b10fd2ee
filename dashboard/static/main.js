// The single page: routes after "#", one live store, keyboard shortcuts.

import { Store } from "./store.js";
import { loadSession } from "./actions.js";
import * as overview from "./overview.js";
import * as deployments from "./deployments.js";
import * as events from "./events.js";
import * as hpas from "./hpas.js";
import * as object from "./object.js";
import { fill, h } from "./dom.js";

const PAGES = [
  { path: "/", key: "1", page: overview, title: "Overview" },
  { path: "/deployments", key: "2", page: deployments, title: "Deployments" },
  { path: "/events", key: "3", page: events, title: "Events" },
  { path: "/hpas", key: "4", page: hpas, title: "Autoscalers" },
];

const store = new Store();
const main = document.getElementById("main");
let current = null; // {page, view, route}
let pending = null; // touched tables since the last render, or "all"
let timer = null;

function parse(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(query));
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "object" && parts.length === 4) {
    return { page: object, title: `${parts[3]}`, params: { table: parts[1], namespace: parts[2], name: parts[3], ...params } };
  }
  const found = PAGES.find((p) => p.path === `/${parts[0] || ""}`) || PAGES[0];
  return { page: found.page, title: found.title, path: found.path, params };
}

function route() {
  const next = parse(location.hash);
  if (current && current.view.unmount) current.view.unmount();
  const root = h("div", { class: "page" });
  fill(main, root);
  current = { ...next, view: next.page.mount(root, store, next.params) };
  document.title = `${next.title} · Shoal`;
  for (const link of document.querySelectorAll("nav a")) {
    const here = link.getAttribute("href") === `#${next.path ?? ""}`;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (store.loaded) current.view.update(null);
}

function schedule(touched) {
  if (pending !== "all") {
    if (touched === null) pending = "all";
    else {
      pending = pending || new Set();
      for (const t of touched) pending.add(t);
    }
  }
  if (timer === null) timer = setTimeout(render, 50);
}

function render() {
  timer = null;
  const touched = pending === "all" ? null : pending;
  pending = null;
  if (current && store.loaded) current.view.update(touched);
}

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (typing(e.target)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  const page = PAGES.find((p) => p.key === e.key);
  if (page) {
    location.hash = `#${page.path}`;
    e.preventDefault();
  } else if (e.key === "/") {
    e.preventDefault();
    const filter = main.querySelector("[data-filter]");
    if (filter) filter.focus();
    else location.hash = "#/events";
  } else if (e.key === "Escape" && location.hash.startsWith("#/object/")) {
    history.length > 1 ? history.back() : (location.hash = "#/");
  } else if (e.key === "?") {
    document.getElementById("keys").toggleAttribute("open");
  }
});

const status = document.getElementById("connection");
store.addEventListener("status", (e) => {
  status.textContent = e.detail === "live" ? "live" : e.detail === "connecting" ? "connecting…" : "reconnecting…";
  status.className = `connection ${e.detail}`;
});
store.addEventListener("change", (e) => schedule(e.detail));
window.addEventListener("hashchange", () => {
  route();
  window.scrollTo(0, 0);
  main.focus({ preventScroll: true }); // keyboard and screen-reader users land on the new page
});
setInterval(() => schedule(new Set(["tick"])), 5000); // ages move on

route();
store.connect();
loadSession().then(() => schedule(null)); // draw the actions this dashboard allows
