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
  // they show changed, unless the user is typing in a form there.
  if (document.body.hasAttribute("data-live") && window.EventSource) {
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
    var es = new EventSource("/events");
    es.addEventListener("change", refresh);
    es.addEventListener("signedout", function () {
      es.close();
      location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
    });
  }
})();
