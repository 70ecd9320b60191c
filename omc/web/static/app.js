// The dashboard shell: log in (cookie session), the menu, and a hash router that shows one
// page module at a time (pages/<name>.js exports render(root, ctx) -> cleanup function).
import { api, loadSchema } from "./api.js";
import { esc } from "./ui.js";

const PAGES = ["overview", "collectors", "backtests", "lab", "floor", "alerts", "settings"];
const $ = (id) => document.getElementById(id);
let me = null;
let cleanup = null;

function showLogin(message = "") {
  me = null;
  if (cleanup) { cleanup(); cleanup = null; }
  document.body.classList.add("anon");
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("page").innerHTML = "";
  $("login").hidden = false;
  $("login-error").textContent = message;
}

async function route() {
  if (!me) return;
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const page = PAGES.includes(name) ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  $("nav").classList.remove("open");
  if (cleanup) { cleanup(); cleanup = null; }
  // a fresh element per visit: a previous page's late answers land in its detached one
  const root = document.createElement("div");
  $("page").replaceChildren(root);
  $("page").dataset.page = page;
  try {
    const module = await import(`./pages/${page}.js`);
    const done = await module.render(root, { me, args: rest.map(decodeURIComponent) });
    cleanup = typeof done === "function" ? done : null;
  } catch (err) {
    root.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
}

function signedIn(user) {
  me = user;
  document.body.classList.remove("anon");
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = user.username + (user.is_admin ? " (admin)" : "");
  route();
}

async function start() {
  await loadSchema();
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("/auth/session", {
        method: "POST",
        body: { username: form.username.value.trim(), password: form.password.value },
      });
      form.password.value = "";
      signedIn(await api("/auth/me"));
    } catch (err) {
      $("login-error").textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("/auth/logout", { method: "POST" }); } catch (_) { /* gone already */ }
    showLogin();
  });
  $("menu").addEventListener("click", () => {
    const open = $("nav").classList.toggle("open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("omc:unauthenticated", () => { if (me) showLogin("your session ended: log in again"); });
  window.addEventListener("hashchange", route);
  try {
    signedIn(await api("/auth/me"));
  } catch (_) {
    showLogin();
  }
}

start();
