// Upload page: send each photo on its own, then poll until the server has read it.
// No library: fetch, FormData and a timer. Without this script the form posts normally.
(() => {
  const form = document.getElementById("upload-form");
  const list = document.getElementById("uploads");
  if (!list) return;
  const POLL_MS = 1000;
  const DONE = new Set(["done", "failed"]);
  let timer = null;

  const text = (tag, cls, value) => {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = value;
    return el;
  };

  function row(name) {
    list.querySelector(".empty")?.remove();
    const li = document.createElement("li");
    li.className = "upload";
    li.append(text("span", "name", name), text("span", "state", "uploading"), text("span", "result", ""));
    list.prepend(li);
    return li;
  }

  function show(li, u) {
    li.dataset.upload = u.id;
    li.dataset.state = u.state;
    li.querySelector(".state").textContent = u.state;
    const result = li.querySelector(".result");
    result.replaceChildren();
    if (u.receipt) {
      const r = u.receipt;
      const a = text("a", "receipt-link", r.merchant || "(no merchant read)");
      a.href = r.url;
      result.append(a, " ", text("span", "date", r.date || "—"), " ",
        text("span", "total", `${r.total ?? "—"} ${r.currency || ""}`.trim()));
      if (r.duplicate_url) {
        const dup = text("span", "badge", "duplicate of ");
        const link = text("a", "", "an earlier receipt");
        link.href = r.duplicate_url;
        dup.append(link);
        result.append(" ", dup);
      }
      if (r.needs_review) result.append(" ", text("span", "badge", "needs review"));
    } else if (u.error) {
      result.append(text("span", "error", u.error));
    }
  }

  function failed(li, message) {
    li.dataset.state = "rejected";
    li.querySelector(".state").textContent = "rejected";
    const err = text("span", "error", message);
    err.setAttribute("role", "alert");
    li.querySelector(".result").replaceChildren(err);
  }

  function pending() {
    return [...list.querySelectorAll("li[data-upload]")].filter((li) => !DONE.has(li.dataset.state));
  }

  async function poll() {
    timer = null;
    const rows = pending();
    if (!rows.length) return;
    try {
      const ids = rows.map((li) => li.dataset.upload).join(",");
      const res = await fetch(`${list.dataset.statusUrl}?ids=${ids}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const body = await res.json();
        for (const u of body.uploads) {
          const li = list.querySelector(`li[data-upload="${u.id}"]`);
          if (li) show(li, u);
        }
      }
    } finally {
      if (pending().length) timer = setTimeout(poll, POLL_MS);
    }
  }

  function schedule() {
    if (!timer && pending().length) timer = setTimeout(poll, POLL_MS);
  }

  async function send(file, csrf) {
    const li = row(file.name);
    const data = new FormData();
    data.append("csrf_token", csrf);
    data.append("file", file, file.name);
    try {
      const res = await fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        failed(li, body.error?.message || `the server answered ${res.status}`);
        return;
      }
      show(li, body.uploads[0]);
      schedule();
    } catch (e) {
      failed(li, "the upload did not reach the server; check the connection and try again");
    }
  }

  form?.addEventListener("submit", (event) => {
    event.preventDefault();
    const csrf = form.querySelector("input[name=csrf_token]").value;
    const files = [...form.querySelectorAll("input[type=file]")].flatMap((input) => [...input.files]);
    if (!files.length) return;
    for (const file of files) send(file, csrf);
    form.reset();
  });

  schedule(); // uploads listed by the server that are still being read
})();
