// PIOT web manager: everything works without this file; it only adds
// confirmations, switching the org on change and live refresh.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Forms with data-confirm ask before they submit (deleting things).
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  // The org switcher submits as soon as another org is chosen.
  document.addEventListener("change", function (ev) {
    if (ev.target.hasAttribute("data-autosubmit")) {
      ev.target.form.requestSubmit();
    }
  });

  // Live pages reload their main part when the server says something
  // they show changed, unless the user is typing in a form there; pages
  // that show things' state (data-thing) get it written in place.
  var live = document.body.hasAttribute("data-live");
  if ((live || document.querySelector("[data-thing]")) && window.EventSource) {
    var busy = false;
    var refresh = function () {
      var main = document.getElementById("main");
      var active = document.activeElement;
      if (busy || (active && active.form && main.contains(active))) {
        return;
      }
      busy = true;
      fetch(location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("main");
          if (fresh) { main.replaceChildren.apply(main, Array.from(fresh.childNodes)); }
        })
        .finally(function () { busy = false; });
    };
    // A thing's new state: text only (textContent), never markup.
    var thing = function (ev) {
      var s;
      try { s = JSON.parse(ev.data); } catch (e) { return; }
      document.querySelectorAll("[data-thing]").forEach(function (box) {
        if (box.getAttribute("data-thing") !== s.id) { return; }
        box.querySelectorAll("[data-field]").forEach(function (el) {
          switch (el.getAttribute("data-field")) {
          case "value": el.textContent = s.value; break;
          case "last-seen":
            el.textContent = s.lastSeen;
            el.setAttribute("title", s.lastSeenAbs);
            el.setAttribute("datetime", s.lastSeenIso);
            break;
          case "last-seen-abs": el.textContent = s.lastSeenAbs; break;
          case "alarm":
            el.textContent = s.alarm ? "alarm" : "ok";
            el.classList.toggle("bad", s.alarm);
            break;
          }
        });
        box.classList.add("fresh");
        setTimeout(function () { box.classList.remove("fresh"); }, 1200);
      });
      // The alarms list reloads when a thing's alarm comes or goes.
      var alarms = document.querySelector("[data-alarm-list]");
      if (live && alarms) {
        var listed = Array.from(document.querySelectorAll("[data-alarm-thing]")).some(function (row) {
          return row.getAttribute("data-alarm-thing") === s.id;
        });
        if (listed !== s.alarm) { refresh(); }
      }
    };
    var es = new EventSource("/events");
    if (live) { es.addEventListener("change", refresh); }
    es.addEventListener("thing", thing);
    es.addEventListener("signedout", function () {
      es.close();
      location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
    });
  }
})();
