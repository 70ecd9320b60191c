// Lab page (filled in as its API routes land).
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Lab", [["/lab/sessions", "Lab"]])) return;
  root.innerHTML = "<h1>Lab</h1>";
}
