// evoart gallery: works without this file; with `evoart gallery serve` it adds the
// favourite star and "save as preset". No libraries, nothing fetched from elsewhere.
(function () {
  "use strict";
  var body = document.body;
  var served = location.protocol === "http:" || location.protocol === "https:";

  // arrow keys follow the page's previous / next links
  document.addEventListener("keydown", function (ev) {
    if (ev.target && /INPUT|TEXTAREA|SELECT/.test(ev.target.tagName)) return;
    var rel = ev.key === "ArrowLeft" ? "prev" : ev.key === "ArrowRight" ? "next" : null;
    var a = rel && document.querySelector('a[rel="' + rel + '"]');
    if (a) location.href = a.href;
  });

  if (!served) return;
  body.classList.add("served");

  function api(path, payload) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  function paint(run, id, on) {
    document.querySelectorAll('.star[data-star="' + id + '"]').forEach(function (b) {
      if (b.dataset.run === run) b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    document.querySelectorAll('.card[data-ind="' + id + '"]').forEach(function (c) {
      c.classList.toggle("fav", on);
    });
  }

  // the ledger is the truth: refresh the stars the page was built with
  var run = body.dataset.run;
  if (run) {
    fetch("/api/runs/" + encodeURIComponent(run) + "/favourites")
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var favs = {};
        data.favourites.forEach(function (id) { favs[id] = true; });
        document.querySelectorAll(".star[data-star]").forEach(function (b) {
          if (b.dataset.run === run) paint(run, b.dataset.star, !!favs[b.dataset.star]);
        });
      }).catch(function () {});
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest(".star[data-star]");
    if (!b) return;
    ev.preventDefault();
    var want = b.getAttribute("aria-pressed") !== "true";
    var r = b.dataset.run, id = b.dataset.star;
    b.disabled = true;
    api("/api/runs/" + encodeURIComponent(r) + "/individuals/" + encodeURIComponent(id) + "/favourite",
        { favourite: want })
      .then(function (data) { paint(r, id, data.favourite); })
      .catch(function (err) { alert("Could not change the favourite: " + err.message); })
      .then(function () { b.disabled = false; });
  });

  var form = document.getElementById("preset-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = document.getElementById("preset-result");
      out.className = ""; out.textContent = "saving…";
      api("/api/runs/" + encodeURIComponent(form.dataset.run) + "/individuals/" +
          encodeURIComponent(form.dataset.ind) + "/preset", {
        name: form.elements.name.value.trim(),
        notes: form.elements.notes.value,
        with_weights: form.elements.with_weights.checked
      }).then(function (data) {
        out.className = "ok"; out.textContent = "saved preset " + data.name + " to " + data.path;
      }).catch(function (err) {
        out.className = "err"; out.textContent = err.message;
      });
    });
  }

  // an interactive run's pause: "breed these" while the run waits; polled, since the
  // terminal may decide first (then this shows what was chosen)
  var breed = document.getElementById("breed");
  if (breed && run) {
    var g = breed.dataset.generation, bform = document.getElementById("breed-form");
    var status = document.getElementById("breed-status");
    var path = "/api/runs/" + encodeURIComponent(run) + "/generations/" + g + "/pause";
    var describe = function (d) {
      return d.kind === "pick" ? "picked " + d.picks.join(", ") : d.kind === "none" ? "no picks: the GA's own survivors" : d.kind;
    };
    var show = function (state) {
      if (state.decision) {
        bform.hidden = true;
        status.textContent = "chosen: " + describe(state.decision) + (state.source ? " (" + state.source + ")" : "");
        return false;
      }
      bform.hidden = !state.open;
      if (state.open) status.textContent = "the run waits for picks: tick the ones to breed";
      return state.open;
    };
    var poll = function () {
      fetch(path).then(function (r) { return r.ok ? r.json() : null; }).then(function (state) {
        if (state && show(state)) setTimeout(poll, 1500);
      }).catch(function () {});
    };
    var send = function (payload) {
      status.textContent = "sending…";
      api(path, payload).then(show).catch(function (err) { status.textContent = err.message; });
    };
    bform.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var picks = Array.prototype.map.call(bform.querySelectorAll("input[name=pick]:checked"), function (c) { return c.value; });
      if (!picks.length) { status.textContent = "tick at least one, or press none"; return; }
      send({ picks: picks });
    });
    document.getElementById("breed-none").addEventListener("click", function () { send({ none: true }); });
    poll();
  }
})();
