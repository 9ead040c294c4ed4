// Small behaviours of the dashboard; htmx does the rest.
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copy);
  if (!target) return;
  const text = target.textContent.trim();
  const done = function () {
    const label = button.querySelector("[data-copy-label]");
    if (label) label.textContent = button.dataset.copiedText || label.textContent;
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    const range = document.createRange();
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
    done();
  }
});

// Filter forms leave their empty fields out of the address, so a search reads as ?q=… only
// ("unknown" is the "any" choice of a yes/no filter).
document.addEventListener("htmx:configRequest", function (event) {
  if (event.detail.verb !== "get" || !event.detail.elt.closest("form[data-drop-empty]")) return;
  const data = event.detail.formData;
  if (!data) return;
  for (const [name, value] of Array.from(data.entries())) {
    if (value === "" || value === "unknown") data.delete(name);
  }
});
