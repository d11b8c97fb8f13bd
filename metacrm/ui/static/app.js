/* metacrm: small helpers for the generated pages. No build step, no framework. */
(function () {
  "use strict";

  function readJson(id, fallback) {
    var el = document.getElementById(id);
    if (!el) return fallback;
    try { return JSON.parse(el.textContent); } catch (e) { return fallback; }
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  /* Ask before destructive submits. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  /* Selects that apply at once (rows per page). */
  document.querySelectorAll("[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  /* Row selection for bulk actions. */
  var selectAll = document.getElementById("select-all");
  function refreshBulk() {
    var none = !document.querySelector(".row-select:checked");
    document.querySelectorAll(".bulk-action").forEach(function (button) { button.disabled = none; });
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll(".row-select").forEach(function (box) { box.checked = selectAll.checked; });
      refreshBulk();
    });
  }
  document.querySelectorAll(".row-select").forEach(function (box) { box.addEventListener("change", refreshBulk); });

  /* The filter builder: rows of field, operator and value, sent as the JSON filter. */
  var rowsBox = document.getElementById("filter-rows");
  if (rowsBox) {
    var fields = readJson("filter-fields", []);
    var labels = readJson("operator-labels", {});
    var byName = {};
    fields.forEach(function (f) { byName[f.name] = f; });
    var noValue = ["today", "yesterday", "tomorrow", "this_week", "last_week", "next_week",
      "this_month", "last_month", "next_month", "this_quarter", "last_quarter", "this_year", "last_year"];
    var numeric = ["integer", "decimal", "currency", "percent", "lookup", "user"];

    function inputFor(field, op, value) {
      var box = el("div", { className: "filter-value d-flex gap-1 flex-grow-1" });
      if (noValue.indexOf(op) >= 0) return box;
      if (op === "is_null") {
        var yn = el("select", { className: "form-select form-select-sm", "data-role": "value" });
        yn.appendChild(el("option", { value: "true", text: labels._yes }));
        yn.appendChild(el("option", { value: "false", text: labels._no }));
        yn.value = value === false ? "false" : "true";
        box.appendChild(yn);
        return box;
      }
      if (field.options && op !== "between") {
        var multiple = op === "in" || op === "not_in" || field.type === "multiselect";
        var sel = el("select", { className: "form-select form-select-sm", "data-role": "value" });
        if (multiple) sel.multiple = true;
        field.options.forEach(function (o) {
          var opt = el("option", { value: o.value, text: o.label });
          var chosen = Array.isArray(value) ? value.indexOf(o.value) >= 0 : value === o.value;
          if (chosen) opt.selected = true;
          sel.appendChild(opt);
        });
        box.appendChild(sel);
        return box;
      }
      var type = "text";
      if (field.type === "date") type = "date";
      else if (field.type === "datetime") type = "datetime-local";
      else if (numeric.indexOf(field.type) >= 0 || op === "last_n_days" || op === "next_n_days") type = "number";
      if (field.type === "boolean") {
        var b = el("select", { className: "form-select form-select-sm", "data-role": "value" });
        b.appendChild(el("option", { value: "true", text: labels._yes }));
        b.appendChild(el("option", { value: "false", text: labels._no }));
        b.value = value === false ? "false" : "true";
        box.appendChild(b);
        return box;
      }
      var count = op === "between" ? 2 : 1;
      for (var i = 0; i < count; i++) {
        var v = Array.isArray(value) ? value[i] : value;
        var input = el("input", { className: "form-control form-control-sm", type: type, "data-role": "value",
          placeholder: op === "in" || op === "not_in" ? labels._value + ", …" : labels._value });
        if (type === "number") input.step = "any";
        if (v !== undefined && v !== null) input.value = Array.isArray(v) ? v.join(", ") : v;
        box.appendChild(input);
      }
      return box;
    }

    function addRow(condition) {
      var field = byName[condition[0]] || fields[0];
      var row = el("div", { className: "filter-row d-flex flex-wrap gap-1 align-items-center" });
      var fieldSel = el("select", { className: "form-select form-select-sm w-auto", "data-role": "field",
        "aria-label": "field" });
      fields.forEach(function (f) {
        var opt = el("option", { value: f.name, text: f.label });
        if (f.name === field.name) opt.selected = true;
        fieldSel.appendChild(opt);
      });
      var opSel = el("select", { className: "form-select form-select-sm w-auto", "data-role": "op",
        "aria-label": "operator" });
      function fillOps(f, chosen) {
        opSel.innerHTML = "";
        f.operators.forEach(function (op) {
          var opt = el("option", { value: op, text: labels[op] || op });
          if (op === chosen) opt.selected = true;
          opSel.appendChild(opt);
        });
      }
      fillOps(field, condition[1]);
      var valueBox = inputFor(field, opSel.value, condition[2]);
      var remove = el("button", { type: "button", className: "btn btn-sm btn-outline-secondary", text: "×",
        "aria-label": labels._remove });
      fieldSel.addEventListener("change", function () {
        field = byName[fieldSel.value];
        fillOps(field);
        var fresh = inputFor(field, opSel.value);
        row.replaceChild(fresh, valueBox);
        valueBox = fresh;
      });
      opSel.addEventListener("change", function () {
        var fresh = inputFor(field, opSel.value);
        row.replaceChild(fresh, valueBox);
        valueBox = fresh;
      });
      remove.addEventListener("click", function () { row.remove(); });
      row.appendChild(fieldSel);
      row.appendChild(opSel);
      row.appendChild(valueBox);
      row.appendChild(remove);
      rowsBox.appendChild(row);
    }

    function parseScalar(field, text) {
      if (field.type === "boolean") return text === "true";
      if (["integer", "lookup", "user"].indexOf(field.type) >= 0) return parseInt(text, 10);
      return text;
    }

    function collect() {
      var conditions = [];
      rowsBox.querySelectorAll(".filter-row").forEach(function (row) {
        var field = byName[row.querySelector("[data-role=field]").value];
        var op = row.querySelector("[data-role=op]").value;
        var inputs = row.querySelectorAll("[data-role=value]");
        if (noValue.indexOf(op) >= 0) { conditions.push([field.name, op]); return; }
        if (op === "is_null") { conditions.push([field.name, op, inputs[0].value === "true"]); return; }
        if (op === "last_n_days" || op === "next_n_days") {
          conditions.push([field.name, op, parseInt(inputs[0].value || "7", 10)]); return;
        }
        if (op === "between") {
          conditions.push([field.name, op, [parseScalar(field, inputs[0].value), parseScalar(field, inputs[1].value)]]);
          return;
        }
        var input = inputs[0];
        if (input.multiple) {
          var chosen = Array.prototype.filter.call(input.options, function (o) { return o.selected; })
            .map(function (o) { return o.value; });
          if (!chosen.length) return;
          conditions.push([field.name, op, (op === "in" || op === "not_in" || op === "contains" || op === "not_contains") ? chosen : chosen[0]]);
          return;
        }
        if (input.value === "") return;
        if (op === "in" || op === "not_in") {
          conditions.push([field.name, op, input.value.split(",").map(function (s) { return parseScalar(field, s.trim()); })
            .filter(function (s) { return s !== ""; })]);
          return;
        }
        conditions.push([field.name, op, parseScalar(field, input.value)]);
      });
      return conditions;
    }

    var state = readJson("filter-state", []);
    if (Array.isArray(state) && state.length && typeof state[0] === "string") state = [state];
    if (Array.isArray(state)) state.forEach(function (c) { if (Array.isArray(c)) addRow(c); });
    document.getElementById("add-condition").addEventListener("click", function () { addRow([]); });
    document.getElementById("clear-filter").addEventListener("click", function () {
      rowsBox.innerHTML = "";
      document.getElementById("filter-input").value = "[]";
      document.getElementById("list-form").submit();
    });
    document.getElementById("list-form").addEventListener("submit", function () {
      if (rowsBox.querySelector(".filter-row") || rowsBox.dataset.touched) {
        document.getElementById("filter-input").value = JSON.stringify(collect());
      }
      var columns = [];
      document.querySelectorAll("#column-list [data-column]").forEach(function (item) {
        if (item.querySelector("input").checked) columns.push(item.getAttribute("data-column"));
      });
      document.getElementById("columns-input").value = columns.join(",");
    });
    rowsBox.addEventListener("click", function () { rowsBox.dataset.touched = "1"; });
  }

  /* The column chooser: move entries up and down. */
  document.querySelectorAll("#column-list [data-move]").forEach(function (button) {
    button.addEventListener("click", function () {
      var item = button.closest("li");
      var list = item.parentNode;
      if (button.getAttribute("data-move") === "-1" && item.previousElementSibling) {
        list.insertBefore(item, item.previousElementSibling);
      } else if (button.getAttribute("data-move") === "1" && item.nextElementSibling) {
        list.insertBefore(item.nextElementSibling, item);
      }
    });
  });

  /* Lookups: type to search the target's search fields, pick one. */
  document.querySelectorAll(".lookup").forEach(function (box) {
    var idInput = box.querySelector(".lookup-id");
    var text = box.querySelector(".lookup-text");
    var results = box.querySelector(".lookup-results");
    var timer = null;
    function clear() { results.innerHTML = ""; }
    text.addEventListener("input", function () {
      idInput.value = "";
      clearTimeout(timer);
      var q = text.value.trim();
      if (!q) { clear(); return; }
      timer = setTimeout(function () {
        fetch(box.getAttribute("data-source") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (items) {
            clear();
            items.forEach(function (item) {
              var choice = el("button", { type: "button", className: "list-group-item list-group-item-action lookup-choice",
                text: item.title });
              choice.addEventListener("click", function () {
                idInput.value = item.id;
                text.value = item.title;
                clear();
              });
              results.appendChild(choice);
            });
          });
      }, 200);
    });
    text.addEventListener("blur", function () { setTimeout(clear, 200); });
  });
})();
