/* Panels of a results page that update in place (the trend, the slices, the power panel).

   A panel's form carries data-panel (the id of the element it redraws) and data-panel-url (the
   server-rendered fragment of that panel). Submitting it (a select with data-autosubmit does so
   when it changes, see pages.js; "Recalculate" does so when clicked) fetches the fragment for
   the page's current query with the form's own fields set, swaps each element of the answer for
   the element of the same id on the page, and writes the query into the address bar, so that the
   link reproduces the view. The page neither reloads nor scrolls.

   Without JavaScript, or when the fetch fails, the form is an ordinary GET form: the whole page
   loads with the same query. */
(function () {
  "use strict";
  var pending = null;

  // The page's query with the form's visible fields set (its hidden copies of the rest of the
  // query may be older than the address bar after another panel changed).
  function queryFor(form) {
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled || field.type === "hidden" || field.type === "submit") {
        return;
      }
      if (field.value === "") {
        params.delete(field.name);
      } else {
        params.set(field.name, field.value);
      }
    });
    return params;
  }

  // Each top-level element of the answer replaces the page's element with its id.
  function swap(html) {
    var focused = document.activeElement && document.activeElement.id;
    var template = document.createElement("template");
    template.innerHTML = html;
    // A copy: moving an element into the page takes it out of the live collection.
    Array.prototype.slice.call(template.content.children).forEach(function (fresh) {
      var old = fresh.id ? document.getElementById(fresh.id) : null;
      if (old) {
        old.replaceWith(fresh);
      }
    });
    var again = focused ? document.getElementById(focused) : null;
    if (again) {
      again.focus({ preventScroll: true });
    }
  }

  // Links that switch one part of the view (data-query="cuped=off") keep the rest of it.
  function keepLinks(params) {
    document.querySelectorAll("a[data-query]").forEach(function (link) {
      var next = new URLSearchParams(params);
      new URLSearchParams(link.getAttribute("data-query")).forEach(function (value, name) {
        next.set(name, value);
      });
      link.setAttribute("href", "?" + next.toString());
    });
  }

  function update(form) {
    var params = queryFor(form);
    var search = params.toString() ? "?" + params.toString() : "";
    var pageUrl = window.location.pathname + search;
    var panel = document.getElementById(form.getAttribute("data-panel"));
    if (pending) {
      pending.abort();
    }
    var controller = new AbortController();
    pending = controller;
    if (panel) {
      panel.setAttribute("aria-busy", "true");
    }
    fetch(form.getAttribute("data-panel-url") + search, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("panel answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        swap(html);
        window.history.replaceState(window.history.state, "", pageUrl);
        keepLinks(params);
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          window.location.assign(pageUrl);
        }
      })
      .finally(function () {
        if (pending === controller) {
          pending = null;
          var current = document.getElementById(form.getAttribute("data-panel"));
          if (current) {
            current.removeAttribute("aria-busy");
          }
        }
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-panel-url") && window.fetch) {
      event.preventDefault();
      update(form);
    }
  });
})();
