// Changing the cluster from the page: only what this dashboard allows (/api/session), each
// action confirmed in a dialog first, then sent with the server's token.

import { h } from "./dom.js";

let session = { changes: false, actions: {}, token: null, identity: "" };

const LABELS = {
  scale: "Scale",
  restart: "Restart",
  undo: "Undo rollout",
  delete: "Delete",
  cordon: "Cordon",
  uncordon: "Uncordon",
  drain: "Drain",
};

const EXPLAINED = {
  scale: "New pods are made, or the newest go, until this many run.",
  restart: "Every pod is replaced by a new one, as a rolling update does (shoal rollout restart).",
  undo: "The deployment goes back to its previous template (shoal rollout undo).",
  delete: "The object is removed; a deployment's pods go with it.",
  cordon: "No new pod is placed on the node; its pods stay.",
  uncordon: "The node takes new pods again.",
  drain: "The node is cordoned and its pods move elsewhere, each replacement Ready before its original stops. DaemonSet pods stay.",
};

const DESTRUCTIVE = new Set(["delete", "drain"]);

/** Ask the server what this page may change (once, at start). */
export async function loadSession() {
  try {
    const response = await fetch("/api/session", { cache: "no-store" });
    if (response.ok) session = await response.json();
  } catch (err) {
    // A dashboard that cannot say stays read-only.
  }
  const mode = document.getElementById("mode");
  if (mode) mode.textContent = session.changes ? `Changes allowed, each confirmed (as ${session.identity || "anyone"})` : "Read-only view";
  return session;
}

function target(table, view) {
  return table === "nodes" ? view.name : `${view.namespace}/${view.name}`;
}

/** The buttons of the actions allowed on one object (nothing on a read-only dashboard). */
export function actionBar(table, view) {
  const allowed = session.changes ? session.actions[table] || [] : [];
  if (!view || !allowed.length) return null;
  const shown = allowed.filter((a) => !(table === "nodes" && ((a === "cordon" && view.cordoned) || (a === "uncordon" && !view.cordoned))));
  return h(
    "div",
    { class: "actions", role: "group", "aria-label": "Actions" },
    shown.map((action) =>
      h(
        "button",
        {
          type: "button",
          class: DESTRUCTIVE.has(action) ? "danger" : null,
          "data-action": action,
          "data-focus": `action/${action}`,
          on: { click: () => confirmAction(table, view, action) },
        },
        `${LABELS[action]}…`,
      ),
    ),
  );
}

function notice(text, tone) {
  let region = document.getElementById("notice");
  if (!region) {
    region = h("p", { id: "notice", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  region.className = `notice ${tone}`;
  region.textContent = text;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => region.classList.add("gone"), tone === "bad" ? 15000 : 6000);
}

async function send(body) {
  const response = await fetch("/api/actions", {
    method: "POST",
    headers: { "content-type": "application/json", "x-shoal-token": session.token || "" },
    body: JSON.stringify(body),
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch (err) {
    answer = { error: `the dashboard answered ${response.status}` };
  }
  if (!response.ok) throw new Error(answer.error || `the dashboard answered ${response.status}`);
  return answer.message;
}

/** A modal dialog naming the change and its object; Esc or Cancel leaves everything as it is. */
function confirmAction(table, view, action) {
  const name = target(table, view);
  const kind = table === "nodes" ? "node" : table.replace(/s$/, "");
  const replicas = action === "scale" ? h("input", { type: "number", min: 0, step: 1, value: view.desired, id: "confirm-replicas", required: true }) : null;
  const error = h("p", { class: "dialog-error", role: "alert" });
  const cancel = h("button", { type: "button", "data-confirm": "cancel" }, "Cancel");
  const ok = h("button", { type: "button", class: DESTRUCTIVE.has(action) ? "danger" : "primary", "data-confirm": "ok" }, LABELS[action]);
  const dialog = h(
    "dialog",
    { class: "confirm", "aria-labelledby": "confirm-title" },
    h("h2", { id: "confirm-title" }, `${LABELS[action]} ${kind} ${name}?`),
    h("p", {}, EXPLAINED[action]),
    replicas ? h("label", { for: "confirm-replicas" }, "Replicas ", replicas) : null,
    h("p", { class: "muted small" }, `As ${session.identity || "anyone"}; the same request as shoal ${action === "undo" || action === "restart" ? `rollout ${action}` : action} on the command line.`),
    error,
    h("div", { class: "dialog-buttons" }, cancel, ok),
  );
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  async function go() {
    const body = { action, table, namespace: view.namespace || "", name: view.name };
    if (replicas) {
      if (!/^\d+$/.test(replicas.value)) {
        error.textContent = "replicas must be a whole number, 0 or more";
        replicas.focus();
        return;
      }
      body.replicas = Number(replicas.value);
    }
    ok.disabled = true;
    try {
      const message = await send(body);
      close();
      notice(message, "ok");
    } catch (err) {
      error.textContent = err.message;
      ok.disabled = false;
    }
  }
  cancel.addEventListener("click", close);
  ok.addEventListener("click", go);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("keydown", (e) => {
    e.stopPropagation(); // the page's own keys do not act behind the dialog
    if (e.key === "Enter" && e.target === replicas) {
      e.preventDefault();
      go();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  (replicas || (DESTRUCTIVE.has(action) ? cancel : ok)).focus();
}
