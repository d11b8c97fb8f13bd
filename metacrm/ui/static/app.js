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
    var operators = readJson("filter-operators", {});  /* the engine's operator catalogue */
    var labels = readJson("filter-words", {});
    var byName = {};
    fields.forEach(function (f) { byName[f.name] = f; });
    /* What an operator's value is: one, many, pair, flag, days or none. */
    function takes(op) { return (operators[op] || {}).value || "one"; }
    var numeric = ["integer", "decimal", "currency", "percent", "lookup", "user"];

    function inputFor(field, op, value) {
      var box = el("div", { className: "filter-value d-flex gap-1 flex-grow-1" });
      if (takes(op) === "none") return box;
      if (takes(op) === "flag") {
        var yn = el("select", { className: "form-select form-select-sm", "data-role": "value" });
        yn.appendChild(el("option", { value: "true", text: labels._yes }));
        yn.appendChild(el("option", { value: "false", text: labels._no }));
        yn.value = value === false ? "false" : "true";
        box.appendChild(yn);
        return box;
      }
      if (field.options && takes(op) !== "pair") {
        var multiple = takes(op) === "many" || field.type === "multiselect";
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
      if (takes(op) === "days") type = "number";  /* "in the last N days" of a date too */
      else if (field.type === "date") type = "date";
      else if (field.type === "datetime") type = "datetime-local";
      else if (numeric.indexOf(field.type) >= 0) type = "number";
      if (field.type === "boolean") {
        var b = el("select", { className: "form-select form-select-sm", "data-role": "value" });
        b.appendChild(el("option", { value: "true", text: labels._yes }));
        b.appendChild(el("option", { value: "false", text: labels._no }));
        b.value = value === false ? "false" : "true";
        box.appendChild(b);
        return box;
      }
      var count = takes(op) === "pair" ? 2 : 1;
      for (var i = 0; i < count; i++) {
        var v = Array.isArray(value) ? value[i] : value;
        var input = el("input", { className: "form-control form-control-sm", type: type, "data-role": "value",
          placeholder: takes(op) === "many" ? labels._value + ", …" : labels._value });
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
          var opt = el("option", { value: op, text: operators[op] ? operators[op].label : op });
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
        if (takes(op) === "none") { conditions.push([field.name, op]); return; }
        if (takes(op) === "flag") { conditions.push([field.name, op, inputs[0].value === "true"]); return; }
        if (takes(op) === "days") {
          conditions.push([field.name, op, parseInt(inputs[0].value || "7", 10)]); return;
        }
        if (takes(op) === "pair") {
          conditions.push([field.name, op, [parseScalar(field, inputs[0].value), parseScalar(field, inputs[1].value)]]);
          return;
        }
        var input = inputs[0];
        if (input.multiple) {
          var chosen = Array.prototype.filter.call(input.options, function (o) { return o.selected; })
            .map(function (o) { return o.value; });
          if (!chosen.length) return;
          conditions.push([field.name, op, (takes(op) === "many" || op === "contains" || op === "not_contains") ? chosen : chosen[0]]);
          return;
        }
        if (input.value === "") return;
        if (takes(op) === "many") {
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

  /* Lookups: type to search the target's search fields, pick one. A lookup with a filter
     sends the values of the record's fields the filter reads (data-record). Listeners
     sit on the document, so rows added to a lines grid work too. */
  function recordValue(form, name) {
    var value = "";
    form.querySelectorAll('[name="' + name + '"]').forEach(function (input) {
      if (input.type === "checkbox" || input.type === "radio") {
        if (input.checked) value = input.value;
      } else if (input.value) {
        value = input.value;
      }
    });
    return value;
  }

  function lookupUrl(box, q, form) {
    var url = box.getAttribute("data-source") + "?q=" + encodeURIComponent(q);
    var field = box.getAttribute("data-filtered-field");
    if (field && form) {
      var prefix = box.getAttribute("data-prefix") || "";
      url += "&field=" + encodeURIComponent(field);
      JSON.parse(box.getAttribute("data-record") || "[]").forEach(function (name) {
        url += "&" + encodeURIComponent("record[" + name + "]") + "=" +
          encodeURIComponent(recordValue(form, prefix + name));
      });
    }
    return url;
  }

  document.addEventListener("input", function (event) {
    var text = event.target;
    if (!text.classList || !text.classList.contains("lookup-text")) return;
    var box = text.closest(".lookup");
    var idInput = box.querySelector(".lookup-id");
    var results = box.querySelector(".lookup-results");
    idInput.value = "";
    clearTimeout(box.timer);
    var q = text.value.trim();
    if (!q) { results.innerHTML = ""; return; }
    box.timer = setTimeout(function () {
      fetch(lookupUrl(box, q, text.form), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (items) {
          results.innerHTML = "";
          items.forEach(function (item) {
            var choice = el("button", { type: "button", className: "list-group-item list-group-item-action lookup-choice",
              text: item.title });
            choice.addEventListener("click", function () {
              idInput.value = item.id;
              text.value = item.title;
              results.innerHTML = "";
              idInput.dispatchEvent(new Event("change", { bubbles: true }));
            });
            results.appendChild(choice);
          });
        });
    }, 200);
  });
  document.addEventListener("focusout", function (event) {
    var box = event.target.classList && event.target.classList.contains("lookup-text") &&
      event.target.closest(".lookup");
    if (box) setTimeout(function () { box.querySelector(".lookup-results").innerHTML = ""; }, 200);
  });

  /* Dependent picklists: a select with data-depends-on offers the options whose
     data-parents hold the controlling field's value (or that have no parents). */
  function refreshDependents(control) {
    if (!control.form || !control.name) return;
    control.form.querySelectorAll("select[data-depends-on]").forEach(function (select) {
      if (select.getAttribute("data-depends-on") !== control.name) return;
      var value = recordValue(control.form, control.name);
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.hasAttribute("data-parents")) return;
        var parents = JSON.parse(option.getAttribute("data-parents"));
        var offered = !parents.length || parents.indexOf(value) >= 0;
        option.hidden = !offered;
        option.disabled = !offered;
        if (!offered && option.selected) select.value = "";
      });
      refreshDependents(select);
    });
  }

  /* Regions: choosing a province fills the cities, a city the districts. */
  function refreshRegion(select) {
    var box = select.closest(".region");
    var selects = Array.prototype.slice.call(box.querySelectorAll("select.region-level"));
    var next = selects[selects.indexOf(select) + 1];
    selects.slice(selects.indexOf(select) + 1).forEach(function (later) {
      while (later.options.length > 1) later.remove(1);
      later.value = "";
      later.disabled = true;
    });
    if (!next || !select.value) return;
    var maxLevel = parseInt(box.getAttribute("data-max-level") || "3", 10);
    var code = select.value;
    var url = box.getAttribute("data-children").replace("000000", encodeURIComponent(code));
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (regions) {
        if (select.value !== code || next.options.length > 1) return;  // chosen again since
        regions.forEach(function (region) {
          if (region.level <= maxLevel) next.appendChild(el("option", { value: region.code, text: region.name }));
        });
        next.disabled = next.options.length <= 1;
      });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.classList && target.classList.contains("region-level")) refreshRegion(target);
    refreshDependents(target);
  });

  /* Lines grids: "Add row" copies the template row with a fresh index; × removes a row. */
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-line]");
    var remove = event.target.closest("[data-remove-line]");
    var grid = (add || remove) && (add || remove).closest(".line-grid");
    if (!grid) return;
    var body = grid.querySelector("tbody");
    if (add) {
      var index = String(parseInt(grid.getAttribute("data-next"), 10) || 0);
      grid.setAttribute("data-next", String(parseInt(index, 10) + 1));
      var row = grid.querySelector("template.line-template").content.firstElementChild.cloneNode(true);
      [row].concat(Array.prototype.slice.call(row.querySelectorAll("*"))).forEach(function (node) {
        Array.prototype.forEach.call(node.attributes, function (attr) {
          if (attr.value.indexOf("__index__") >= 0) node.setAttribute(attr.name, attr.value.split("__index__").join(index));
        });
      });
      body.insertBefore(row, body.querySelector(".line-empty"));
      var first = row.querySelector("input:not([type=hidden]):not([readonly]), select");
      if (first) first.focus();
    } else {
      remove.closest("tr").remove();
    }
    body.querySelector(".line-empty").classList.toggle("d-none", !!body.querySelector(".line-row"));
  });
})();
