// Collectors page (filled in as its API routes land).
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Collectors", [["/collectors", "Collectors"]])) return;
  root.innerHTML = "<h1>Collectors</h1>";
}
