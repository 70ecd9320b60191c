// Settings page (filled in as its API routes land).
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Settings", [["/credentials", "Settings"]])) return;
  root.innerHTML = "<h1>Settings</h1>";
}
