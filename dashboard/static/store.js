// The browser's copy of the cluster: a snapshot from /api/stream, then the patches after it.
// The same rule as shoal/dashboard/state.py `apply`: patches numbered at or below what we
// hold are skipped; a value of null removes the key.

export const TABLES = ["pods", "nodes", "deployments", "services", "hpas"];
const EVENTS_KEPT = 1000;
const HISTORY_KEPT = 500;

export class Store extends EventTarget {
  constructor() {
    super();
    this.seq = -1;
    this.tables = Object.fromEntries(TABLES.map((t) => [t, new Map()]));
    this.events = [];
    this.status = "connecting";
    this.loaded = false;
    /** HPA key -> [{at, current, desired}] seen while this page is open. */
    this.history = new Map();
  }

  connect(url = "/api/stream") {
    const source = new EventSource(url);
    source.addEventListener("snapshot", (e) => this.load(JSON.parse(e.data)));
    source.addEventListener("patch", (e) => this.apply(JSON.parse(e.data)));
    source.addEventListener("open", () => this.setStatus("live"));
    source.addEventListener("error", () => this.setStatus("reconnecting"));
    this.source = source;
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  load(snapshot) {
    this.seq = snapshot.seq;
    for (const table of TABLES) {
      this.tables[table] = new Map(Object.entries(snapshot.tables[table] || {}));
    }
    this.events = snapshot.events.slice(-EVENTS_KEPT);
    for (const [key, hpa] of this.tables.hpas) this.remember(key, hpa);
    this.loaded = true;
    this.setStatus("live");
    this.changed(null);
  }

  apply(patches) {
    const touched = new Set();
    for (const patch of patches) {
      if (patch.seq <= this.seq) continue;
      this.seq = patch.seq;
      if (patch.event) {
        this.events.push(patch.event);
        touched.add("events");
        continue;
      }
      const rows = this.tables[patch.table];
      if (!rows) continue;
      if (patch.value === null) rows.delete(patch.key);
      else rows.set(patch.key, patch.value);
      if (patch.table === "hpas" && patch.value) this.remember(patch.key, patch.value);
      touched.add(patch.table);
      touched.add(`${patch.table}/${patch.key}`);
    }
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
    if (touched.size) this.changed(touched);
  }

  remember(key, hpa) {
    if (hpa.current === null) return;
    const points = this.history.get(key) || [];
    const last = points[points.length - 1];
    if (!last || last.current !== hpa.current || last.desired !== hpa.desired) {
      points.push({ at: Date.now() / 1000, current: hpa.current, desired: hpa.desired });
      if (points.length > HISTORY_KEPT) points.shift();
      this.history.set(key, points);
    }
  }

  /** touched: the tables and `table/key`s that changed, or null for everything. */
  changed(touched) {
    this.dispatchEvent(new CustomEvent("change", { detail: touched }));
  }

  rows(table) {
    return [...this.tables[table].values()];
  }
}
