// The segment builder: edits a condition tree kept as JSON in a hidden input and shows a live count.
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (value !== undefined && value !== null) node.setAttribute(key, value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function Builder(root) {
    this.root = root;
    this.input = document.getElementById(root.dataset.target);
    const data = JSON.parse(document.getElementById(root.dataset.catalogue).textContent);
    this.texts = data.texts;
    this.refs = data.refs;
    this.fields = {};
    data.fields.forEach((f) => { this.fields[f.field] = f; });
    this.fieldList = data.fields;
    this.count = root.querySelector("[data-count]");
    this.errors = root.querySelector("[data-errors]");
    let tree;
    try { tree = JSON.parse(this.input.value || "null"); } catch (e) { tree = null; }
    this.tree = this.toGroup(tree);
    this.timer = null;
    this.render();
  }

  // The UI edits groups {kind: all|any, negate, items}; a bare condition is a group of one.
  Builder.prototype.toGroup = function (node) {
    if (!node || typeof node !== "object") return { kind: "all", negate: false, items: [] };
    if (node.not) {
      const inner = this.toGroup(node.not);
      inner.negate = !inner.negate;
      return inner;
    }
    if (Array.isArray(node.all) || Array.isArray(node.any)) {
      const kind = node.all ? "all" : "any";
      return { kind: kind, negate: false, items: node[kind].map((child) => this.toItem(child)) };
    }
    return { kind: "all", negate: false, items: [this.toItem(node)] };
  };

  Builder.prototype.toItem = function (node) {
    if (node && (node.all || node.any || node.not)) return this.toGroup(node);
    return Object.assign({}, node);
  };

  Builder.prototype.toJSON = function (group) {
    const items = group.items.map((item) => (item.items ? this.toJSON(item) : item)).filter(Boolean);
    if (!items.length) return null;
    let node = {};
    node[group.kind] = items;
    if (group.negate) node = { not: node };
    return node;
  };

  Builder.prototype.changed = function () {
    const json = this.toJSON(this.tree) || { all: [] };
    this.input.value = JSON.stringify(json);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.preview(json), 350);
  };

  Builder.prototype.preview = function (json) {
    if (!json.all || json.all.length) {
      fetch(this.root.dataset.previewUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(json),
      }).then((r) => r.json()).then((body) => {
        if (body.errors) {
          this.count.textContent = "—";
          this.errors.textContent = Object.entries(body.errors).map(([path, msgs]) => path + ": " + msgs.join(" ")).join("; ");
        } else {
          this.count.textContent = body.count.toLocaleString();
          this.errors.textContent = "";
        }
      });
    } else {
      this.count.textContent = "—";
      this.errors.textContent = this.texts.empty;
    }
  };

  Builder.prototype.render = function () {
    const holder = this.root.querySelector("[data-tree]");
    holder.replaceChildren(this.renderGroup(this.tree, null));
    this.changed();
  };

  Builder.prototype.renderGroup = function (group, parent) {
    const t = this.texts;
    const kind = el("select", { class: "form-select form-select-sm w-auto", "aria-label": t.all + " / " + t.any, "data-group-kind": "" }, [
      el("option", { value: "all", text: t.all }), el("option", { value: "any", text: t.any }),
    ]);
    kind.value = group.kind;
    kind.addEventListener("change", () => { group.kind = kind.value; this.changed(); });
    const negateId = "neg-" + Math.random().toString(36).slice(2);
    const negate = el("input", { type: "checkbox", class: "form-check-input", id: negateId });
    negate.checked = group.negate;
    negate.addEventListener("change", () => { group.negate = negate.checked; this.changed(); });
    const head = el("div", { class: "d-flex flex-wrap align-items-center gap-2 mb-2" }, [
      el("div", { class: "form-check mb-0" }, [negate, el("label", { class: "form-check-label small", for: negateId, text: t.not })]),
      kind,
    ]);
    const addCond = el("button", { type: "button", class: "btn btn-sm btn-outline-primary", "data-add-condition": "" }, [
      el("i", { class: "bi bi-plus-lg me-1" }), document.createTextNode(t.addCondition),
    ]);
    addCond.addEventListener("click", () => {
      const first = this.fieldList[0];
      group.items.push({ field: first.field, op: first.ops[0] });
      this.render();
    });
    const addGroup = el("button", { type: "button", class: "btn btn-sm btn-light", "data-add-group": "" }, [
      el("i", { class: "bi bi-diagram-3 me-1" }), document.createTextNode(t.addGroup),
    ]);
    addGroup.addEventListener("click", () => { group.items.push({ kind: "any", negate: false, items: [] }); this.render(); });
    head.append(addCond, addGroup);
    if (parent) {
      const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger ms-auto", "aria-label": t.remove }, [el("i", { class: "bi bi-x-lg" })]);
      remove.addEventListener("click", () => { parent.items.splice(parent.items.indexOf(group), 1); this.render(); });
      head.append(remove);
    }
    const body = el("div", { class: "d-flex flex-column gap-2" });
    group.items.forEach((item) => {
      body.append(item.items ? this.renderGroup(item, group) : this.renderCondition(item, group));
    });
    return el("div", { class: "border rounded-3 p-2 bg-white" + (parent ? " ms-3" : ""), "data-group": "" }, [head, body]);
  };

  Builder.prototype.renderCondition = function (cond, group) {
    const t = this.texts;
    const spec = this.fields[cond.field] || this.fieldList[0];
    const field = el("select", { class: "form-select form-select-sm w-auto", "data-field": "", "aria-label": "field" });
    const categories = {};
    this.fieldList.forEach((f) => {
      if (!categories[f.category]) {
        categories[f.category] = el("optgroup", { label: f.category });
        field.append(categories[f.category]);
      }
      categories[f.category].append(el("option", { value: f.field, text: f.label }));
    });
    field.value = spec.field;
    field.addEventListener("change", () => {
      const next = this.fields[field.value];
      Object.keys(cond).forEach((key) => delete cond[key]);
      cond.field = next.field;
      cond.op = next.ops[0];
      this.render();
    });
    const op = el("select", { class: "form-select form-select-sm w-auto", "data-op": "", "aria-label": "operator" });
    spec.ops.forEach((o) => op.append(el("option", { value: o, text: t.ops[o] || o })));
    op.value = spec.ops.includes(cond.op) ? cond.op : spec.ops[0];
    cond.op = op.value;
    op.addEventListener("change", () => { cond.op = op.value; delete cond.value; this.render(); });
    const row = el("div", { class: "d-flex flex-wrap align-items-center gap-2", "data-condition": "" }, [field]);
    this.renderParams(spec, cond).forEach((p) => row.append(p));
    row.append(op);
    this.renderValue(spec, cond).forEach((v) => row.append(v));
    const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger ms-auto", "aria-label": t.remove }, [el("i", { class: "bi bi-x-lg" })]);
    remove.addEventListener("click", () => { group.items.splice(group.items.indexOf(cond), 1); this.render(); });
    row.append(remove);
    return row;
  };

  Builder.prototype.renderParams = function (spec, cond) {
    const t = this.texts;
    const out = [];
    Object.entries(spec.params || {}).forEach(([name, kind]) => {
      if (kind === "event") {
        const select = el("select", { class: "form-select form-select-sm w-auto", "aria-label": t.event });
        (spec.choices || []).forEach(([value, label]) => select.append(el("option", { value: value, text: label })));
        if (!cond.event) cond.event = select.options[0].value;
        select.value = cond.event;
        select.addEventListener("change", () => { cond.event = select.value; this.changed(); });
        out.push(select);
      } else if (kind === "days") {
        if (!cond.days) cond.days = 30;
        out.push(this.numberInput(cond.days, (v) => { cond.days = v; }, t.days), el("span", { class: "small", text: t.days }));
      } else if (kind === "key") {
        out.push(this.textInput(cond.key || "", (v) => { cond.key = v; }, t.key));
      } else if (kind === "strings") {
        out.push(this.textInput((cond[name] || []).join(", "), (v) => { cond[name] = splitList(v); }, t[name] || name));
      }
    });
    return out;
  };

  function splitList(text) {
    return text.split(/[,，]/).map((s) => s.trim()).filter(Boolean);
  }

  Builder.prototype.numberInput = function (value, set, label) {
    const input = el("input", { type: "number", class: "form-control form-control-sm", style: "width:7rem", "aria-label": label, step: "any" });
    input.value = value === undefined || value === null ? "" : value;
    input.addEventListener("input", () => { set(input.value === "" ? undefined : Number(input.value)); this.changed(); });
    return input;
  };

  Builder.prototype.textInput = function (value, set, label, type) {
    const input = el("input", { type: type || "text", class: "form-control form-control-sm w-auto", "aria-label": label, placeholder: label });
    input.value = value === undefined || value === null ? "" : value;
    input.addEventListener("input", () => { set(input.value); this.changed(); });
    return input;
  };

  Builder.prototype.selectInput = function (options, value, multiple, set) {
    const select = el("select", { class: "form-select form-select-sm w-auto", "data-value": "" });
    if (multiple) { select.multiple = true; select.size = Math.min(6, Math.max(3, options.length)); }
    options.forEach(([v, label]) => select.append(el("option", { value: String(v), text: label })));
    const chosen = (Array.isArray(value) ? value : [value]).map(String);
    Array.from(select.options).forEach((o) => { o.selected = chosen.includes(o.value); });
    if (!multiple && value === undefined && options.length) set(options[0][0]);
    const numeric = options.length && typeof options[0][0] === "number";
    select.addEventListener("change", () => {
      const picked = Array.from(select.selectedOptions).map((o) => (numeric ? Number(o.value) : o.value));
      set(multiple ? picked : picked[0]);
      this.changed();
    });
    return select;
  };

  Builder.prototype.renderValue = function (spec, cond) {
    const t = this.texts;
    const op = cond.op;
    const set = (v) => { cond.value = v; };
    if (op === "this_month") { delete cond.value; return []; }
    if (op === "is_null" || spec.type === "bool") {
      if (typeof cond.value !== "boolean") cond.value = true;
      return [this.selectInput([["true", t.yes], ["false", t.no]], String(cond.value), false, (v) => { cond.value = v === "true"; })];
    }
    if (op === "within_last_days" || op === "within_next_days") {
      return [this.numberInput(cond.value, set, t.days), el("span", { class: "small", text: t.days })];
    }
    const multiple = ["in", "not_in", "has_any", "has_all", "has_none"].includes(op);
    const options = spec.type === "choice" ? spec.choices : this.refs[spec.field];
    if (options && ["choice", "ref", "tags", "segment"].includes(spec.type)) {
      return [this.selectInput(options, cond.value, multiple, set)];
    }
    const dateType = spec.type === "date" || spec.type === "datetime";
    const numeric = ["integer", "decimal", "percent"].includes(spec.type);
    if (op === "between") {
      const pair = Array.isArray(cond.value) ? cond.value.slice() : [undefined, undefined];
      cond.value = pair;
      const make = (i) => (dateType
        ? this.textInput(pair[i], (v) => { pair[i] = v; }, "", "date")
        : this.numberInput(pair[i], (v) => { pair[i] = v; }, ""));
      return [make(0), el("span", { class: "small", text: "–" }), make(1)];
    }
    if (multiple) {
      const text = Array.isArray(cond.value) ? cond.value.join(", ") : "";
      return [this.textInput(text, (v) => { cond.value = splitList(v).map((s) => (numeric ? Number(s) : s)); }, t.listHint)];
    }
    if (dateType) return [this.textInput(cond.value, set, "", "date")];
    if (numeric) return [this.numberInput(cond.value, set, "")];
    return [this.textInput(cond.value, set, "")];
  };

  function start() {
    document.querySelectorAll("[data-builder]").forEach((root) => {
      if (!root.builder) root.builder = new Builder(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
