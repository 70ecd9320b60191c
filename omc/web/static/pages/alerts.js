// Alerts page (filled in as its API routes land).
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Alerts", [["/alerts", "Alerts"]])) return;
  root.innerHTML = "<h1>Alerts</h1>";
}
