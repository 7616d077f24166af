// Receipt page: hovering or focusing a field highlights the OCR lines it was read from.
document.addEventListener("DOMContentLoaded", () => {
  for (const row of document.querySelectorAll("tr[data-lines]")) {
    const ids = (row.dataset.lines || "").split(" ").filter(Boolean);
    if (!ids.length) continue;
    const boxes = ids.map((id) => document.querySelector(`polygon[data-line="${id}"]`)).filter(Boolean);
    const on = () => boxes.forEach((b) => b.classList.add("hl"));
    const off = () => boxes.forEach((b) => b.classList.remove("hl"));
    row.addEventListener("mouseenter", on);
    row.addEventListener("mouseleave", off);
    row.addEventListener("focusin", on);
    row.addEventListener("focusout", off);
  }
});
