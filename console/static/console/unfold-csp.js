// unfold's Alpine components under the platform's CSP (script-src 'self', no eval).
//
// The console loads Alpine's CSP build, which evaluates directive expressions with its own parser: no
// arrow functions and no globals (window, localStorage) inside attributes. unfold's page-level code
// that needs them lives here instead, registered as Alpine data components by name; the component
// functions unfold's app.js defines as globals (theme, searchForm, ...) are registered the same way.
(function () {
  "use strict";

  var SIDEBAR_KEY = "sidebarDesktopOpen";

  function storedSidebarOpen() {
    try {
      var stored = window.localStorage.getItem(SIDEBAR_KEY);
      return stored === null ? true : stored === "1";
    } catch (error) {
      return true;
    }
  }

  document.addEventListener("alpine:init", function () {
    var Alpine = window.Alpine;

    // The <body> of every page: the sidebar's state and the change form's active tab.
    Alpine.data("unfoldPage", function () {
      return {
        activeTab: "",
        sidebarMobileOpen: false,
        sidebarDesktopOpen: storedSidebarOpen(),
        // unfold's attributes name two globals, which the CSP build does not reach: the change form's
        // action reads window.location, the sidebar toggle calls localStorage.setItem. These stand-ins
        // answer them (the $watch below is what stores the sidebar's state).
        window: { location: { pathname: window.location.pathname, search: window.location.search } },
        localStorage: { setItem: function () {}, getItem: function () { return null; } },
        init: function () {
          var body = this.$el;
          if (body.dataset.hasTabs) {
            var current = typeof window.getCurrentTab === "function" ? window.getCurrentTab() : null;
            this.activeTab = current || body.dataset.activeTab || "";
          }
          this.$watch("sidebarDesktopOpen", function (value) {
            try {
              window.localStorage.setItem(SIDEBAR_KEY, value ? "1" : "0");
            } catch (error) {
              // Private windows may refuse storage: the sidebar then forgets its state.
            }
          });
        },
      };
    });

    ["theme", "searchForm", "searchDropdown", "searchCommand"].forEach(function (name) {
      if (typeof window[name] === "function") {
        Alpine.data(name, window[name]);
      }
    });
  });
})();
