// Floor page (filled in as its API routes land).
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Floor", [["/accounts", "Floor"]])) return;
  root.innerHTML = "<h1>Floor</h1>";
}
