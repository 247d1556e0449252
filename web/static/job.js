// A job's page follows the job without reloading (issue 23): every two seconds it reads
// the page again and updates the status line (a polite live region, so a screen reader
// hears each change) and the rest of the job's section in place, until the job has ended.
// Without scripts, the page's "Check again" link does the same by hand.
(function () {
  "use strict";
  var section = document.getElementById("job");
  if (!section) {
    return;
  }
  function ended(element) {
    return element.dataset.status === "COMPLETED" || element.dataset.status === "FAILED";
  }
  function update(fresh) {
    var state = document.getElementById("job-state");
    var freshState = fresh.querySelector("#job-state");
    if (state && freshState && state.innerHTML !== freshState.innerHTML) {
      state.innerHTML = freshState.innerHTML;
    }
    var body = document.getElementById("job-body");
    var freshBody = fresh.querySelector("#job-body");
    if (body && freshBody && body.innerHTML !== freshBody.innerHTML) {
      body.innerHTML = freshBody.innerHTML;
    }
    section.dataset.status = fresh.dataset.status;
  }
  function follow() {
    if (ended(section)) {
      return;
    }
    fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (text) {
        if (text) {
          var page = new DOMParser().parseFromString(text, "text/html");
          var fresh = page.getElementById("job");
          if (fresh) {
            update(fresh);
          }
        }
      })
      .catch(function () {})
      .then(function () {
        window.setTimeout(follow, 2000);
      });
  }
  window.setTimeout(follow, 2000);
})();
