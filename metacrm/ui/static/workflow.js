/* metacrm: the stage path (keep the current stage in view) and the kanban board (drag a
   card to another stage; the server runs the same checks as the path bar's buttons). */
(function () {
  "use strict";

  /* On a narrow screen the path scrolls sideways: start with the current stage in view. */
  document.querySelectorAll(".stage-path").forEach(function (path) {
    var current = path.querySelector("[aria-current=step]");
    if (current && path.scrollWidth > path.clientWidth) {
      path.scrollLeft = current.offsetLeft - (path.clientWidth - current.offsetWidth) / 2;
    }
  });

  var board = document.getElementById("kanban");
  if (!board) return;

  var texts = {};
  try { texts = JSON.parse(document.getElementById("kanban-texts").textContent); } catch (e) { texts = {}; }
  var token = document.getElementById("kanban-csrf").value;
  var alerts = document.getElementById("kanban-alerts");
  var symbol = board.getAttribute("data-symbol") || "";
  var scale = parseInt(board.getAttribute("data-scale") || "2", 10);
  var dragged = null;  // {card, from, next}

  function fill(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (m, k) { return values[k]; });
  }

  function showAlert(kind, message, items) {
    var box = document.createElement("div");
    box.className = "alert alert-" + kind + " alert-dismissible fade show kanban-alert";
    box.setAttribute("role", "alert");
    var text = document.createElement("div");
    text.textContent = message;
    box.appendChild(text);
    if (items && items.length) {
      var list = document.createElement("ul");
      list.className = "mb-0 small kanban-missing";
      items.forEach(function (item) {
        var li = document.createElement("li");
        li.textContent = item.message;
        li.setAttribute("data-kind", item.kind);
        li.setAttribute("data-name", item.name);
        list.appendChild(li);
      });
      box.appendChild(list);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", texts.close || "Close");
    box.appendChild(close);
    alerts.replaceChildren(box);
  }

  function money(value) {
    return symbol + Number(value).toLocaleString("en-US",
      { minimumFractionDigits: scale, maximumFractionDigits: scale });
  }

  function recount(column, cards, amount) {
    var count = column.querySelector(".kanban-count");
    count.textContent = String(parseInt(count.textContent, 10) + cards);
    var sum = column.querySelector(".kanban-sum");
    if (sum) {
      var value = parseFloat(column.getAttribute("data-sum")) + amount;
      column.setAttribute("data-sum", String(value));
      sum.textContent = money(value);
    }
  }

  function putBack(card, from, next) {
    from.querySelector(".kanban-cards").insertBefore(card, next && next.parentNode ? next : null);
  }

  function send(card, from, next, column, extra) {
    var body = new URLSearchParams();
    body.set("csrf_token", token);
    body.set("to", column.getAttribute("data-stage"));
    body.set("version", card.getAttribute("data-version"));
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    column.querySelector(".kanban-cards").prepend(card);
    card.classList.add("is-pending");
    fetch(card.getAttribute("data-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    }).then(function (answer) {
      card.classList.remove("is-pending");
      var data = answer.data || {};
      if (answer.status === 200 && data.ok && data.moved) {
        var amount = parseFloat(card.getAttribute("data-amount")) || 0;
        recount(from, -1, -amount);
        recount(column, 1, amount);
        if (data.version != null) card.setAttribute("data-version", data.version);
        showAlert("success", fill(texts.moved, { stage: column.getAttribute("data-label") }));
        return;
      }
      putBack(card, from, next);
      if (answer.status === 200 && data.ok) {
        card.classList.add("is-locked");
        showAlert("info", fill(texts.waits, { id: data.approval_id }));
        return;
      }
      var error = data.error || {};
      if (error.missing && error.missing.length) showAlert("danger", texts.refused, error.missing);
      else showAlert("danger", error.message || texts.failed);
    }).catch(function () {
      card.classList.remove("is-pending");
      putBack(card, from, next);
      showAlert("danger", texts.failed);
    });
  }

  /* Dropping on a lost stage asks for the reason first. */
  var modalEl = document.getElementById("lost-modal");
  var pendingLost = null;
  if (modalEl) {
    modalEl.addEventListener("hidden.bs.modal", function () { pendingLost = null; });
    document.getElementById("lost-modal-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var select = document.getElementById("kanban-lost-reason");
      if (!pendingLost || !select.value) return;
      var extra = {};
      extra[select.name] = select.value;
      var move = pendingLost;
      pendingLost = null;
      window.bootstrap.Modal.getOrCreateInstance(modalEl).hide();
      send(move.card, move.from, move.next, move.column, extra);
    });
  }

  board.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".kanban-card[draggable=true]");
    if (!card) return;
    dragged = { card: card, from: card.closest(".kanban-column"), next: card.nextElementSibling };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
    card.classList.add("is-dragging");
  });
  board.addEventListener("dragend", function (event) {
    var card = event.target.closest && event.target.closest(".kanban-card");
    if (card) card.classList.remove("is-dragging");
    board.querySelectorAll(".kanban-column.is-over").forEach(function (c) { c.classList.remove("is-over"); });
  });
  board.addEventListener("dragover", function (event) {
    var column = event.target.closest(".kanban-column");
    if (!dragged || !column) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    board.querySelectorAll(".kanban-column.is-over").forEach(function (c) {
      if (c !== column) c.classList.remove("is-over");
    });
    column.classList.add("is-over");
  });
  board.addEventListener("drop", function (event) {
    var column = event.target.closest(".kanban-column");
    if (!dragged || !column) return;
    event.preventDefault();
    column.classList.remove("is-over");
    var move = dragged;
    dragged = null;
    if (column === move.from) return;
    move.column = column;
    if (column.getAttribute("data-type") === "lost" && modalEl) {
      pendingLost = move;
      document.getElementById("kanban-lost-reason").value = "";
      window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
      return;
    }
    send(move.card, move.from, move.next, column, {});
  });
})();
