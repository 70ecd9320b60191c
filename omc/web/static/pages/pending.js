// The box a page shows for each of its API routes this server does not have.
import { has } from "../api.js";
import { unavailable } from "../ui.js";

/** Renders `title` with an "unavailable" box per missing route; true when all are there. */
export function needs(root, title, routes) {
  const missing = routes.filter(([path, label]) => !has(path) && label);
  if (!missing.length) return true;
  root.innerHTML = `<h1>${title}</h1>` + missing.map(([, label]) => unavailable(label)).join("");
  return false;
}
