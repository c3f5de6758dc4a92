// Keyboard flow of the triagekit review page. Ticket text is never handled here: labels come from the page's JSON
// block and are put into the page with textContent only (never innerHTML), so no markup can be injected.
(function () {
  "use strict";

  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && ["text", "search", "password", "email"].indexOf(el.type) >= 0));
  }

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function follow(id) {
    const a = document.getElementById(id);
    if (a) window.location.assign(a.href);
  }

  // -- queue page: arrows pick a row, Enter opens it ------------------------------------------------------------
  function initQueue() {
    const rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr"));
    let at = -1;
    function mark(i) {
      if (!rows.length) return;
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r, j) { r.classList.toggle("current", j === at); });
      rows[at].querySelector("a").focus();
    }
    document.addEventListener("keydown", function (e) {
      if (e.altKey || e.ctrlKey || e.metaKey || isTyping(e.target)) return;
      if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); mark(at + 1); }
      else if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); mark(at - 1); }
      else if ((e.key === "r" || e.key === "R")) { follow("start-review"); }
    });
  }

  // -- review page ----------------------------------------------------------------------------------------------
  function initReview() {
    const form = document.getElementById("review-form");
    const heads = Array.prototype.slice.call(form.querySelectorAll("fieldset.head"));
    const data = document.getElementById("labels-data");
    const labels = data ? JSON.parse(data.textContent) : {};
    let current = 0;

    function focusHead(i) {
      if (!heads.length) return;
      current = (i + heads.length) % heads.length;
      heads.forEach(function (h, j) { h.classList.toggle("current", j === current); });
      heads[current].focus();
    }

    function choose(k) {
      const opts = heads[current].querySelectorAll("input.opt");
      const opt = opts[k - 1];
      if (!opt) return;
      if (opt.type === "checkbox") opt.checked = !opt.checked; else opt.checked = true;
    }

    function pick(fs, label) {
      const existing = Array.prototype.slice.call(fs.querySelectorAll("input.opt, input.other-opt"))
        .filter(function (o) { return o.value === label; })[0];
      if (existing) { existing.checked = true; return; }
      if (fs.dataset.multi === "1") {
        const li = document.createElement("li");
        const lab = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox"; box.className = "opt"; box.name = "h:" + fs.dataset.head; box.value = label;
        box.checked = true;
        const span = document.createElement("span");
        span.className = "lab"; span.textContent = label;
        lab.appendChild(box); lab.appendChild(document.createTextNode(" ")); lab.appendChild(span);
        li.appendChild(lab);
        fs.querySelector("ol.options").appendChild(li);
        return;
      }
      const other = fs.querySelector("li.other");
      const radio = other.querySelector("input");
      radio.value = label; radio.checked = true;
      other.querySelector("span.lab").textContent = label;
      other.hidden = false;
    }

    heads.forEach(function (fs, index) {
      const input = fs.querySelector("input.typeahead");
      const list = fs.querySelector("ul.ta-list");
      const all = labels[fs.dataset.head] || [];
      let matches = [], active = 0;

      function render() {
        list.replaceChildren();
        matches.forEach(function (label, i) {
          const li = document.createElement("li");
          li.id = input.id + "-o" + i;
          li.setAttribute("role", "option");
          li.setAttribute("aria-selected", i === active ? "true" : "false");
          li.textContent = label;
          li.addEventListener("mousedown", function (ev) { ev.preventDefault(); done(label); });
          list.appendChild(li);
        });
        list.hidden = matches.length === 0;
        input.setAttribute("aria-expanded", matches.length ? "true" : "false");
        if (matches.length) input.setAttribute("aria-activedescendant", input.id + "-o" + active);
        else input.removeAttribute("aria-activedescendant");
      }

      function done(label) {
        pick(fs, label);
        input.value = ""; matches = []; render();
        focusHead(index);
      }

      input.addEventListener("input", function () {
        const q = input.value.trim().toLowerCase();
        matches = !q ? [] : all.filter(function (l) { return l.toLowerCase().indexOf(q) >= 0; })
          .sort(function (a, b) {
            return (a.toLowerCase().indexOf(q) === 0 ? 0 : 1) - (b.toLowerCase().indexOf(q) === 0 ? 0 : 1);
          }).slice(0, 12);
        active = 0; render();
      });
      input.addEventListener("focus", function () { current = index; });
      input.addEventListener("keydown", function (e) {
        if (e.key === "ArrowDown") { e.preventDefault(); active = Math.min(matches.length - 1, active + 1); render(); }
        else if (e.key === "ArrowUp") { e.preventDefault(); active = Math.max(0, active - 1); render(); }
        else if (e.key === "Enter") { e.preventDefault(); e.stopPropagation(); if (matches[active]) done(matches[active]); }
        else if (e.key === "Escape") { e.preventDefault(); input.value = ""; matches = []; render(); focusHead(index); }
      });
    });

    const note = document.getElementById("note");
    document.addEventListener("keydown", function (e) {
      const t = e.target;
      if (t === note) {
        if (e.key === "Escape") { e.preventDefault(); focusHead(current); }
        else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(form); }
        return;
      }
      if (e.altKey || e.ctrlKey || e.metaKey || isTyping(t)) return;
      const k = e.key;
      if (/^[1-9]$/.test(k)) { e.preventDefault(); choose(Number(k)); }
      else if (k === "Enter") {
        if (t.tagName === "BUTTON" || t.tagName === "A") return;  // the focused control does its own thing
        e.preventDefault(); submit(form);
      }
      else if (k === "s" || k === "S") { e.preventDefault(); submit(document.getElementById("skip-form")); }
      else if (k === "u" || k === "U") { e.preventDefault(); submit(document.getElementById("undo-form")); }
      else if (k === "ArrowDown") { e.preventDefault(); focusHead(current + 1); }
      else if (k === "ArrowUp") { e.preventDefault(); focusHead(current - 1); }
      else if (k === "ArrowRight") { e.preventDefault(); follow("next-link"); }
      else if (k === "ArrowLeft") { e.preventDefault(); follow("prev-link"); }
      else if (k === "/" || k === "l" || k === "L") {
        e.preventDefault(); if (heads[current]) heads[current].querySelector("input.typeahead").focus();
      }
      else if (k === "n" || k === "N") { e.preventDefault(); note.focus(); }
    });
    focusHead(0);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const page = document.body.dataset.page;
    if (page === "queue") initQueue();
    else if (page === "review" && document.getElementById("review-form")) initReview();
  });
})();
