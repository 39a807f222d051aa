/* Studio's progressive enhancements. Every page works without this file.
   - Copy buttons for long scope ids (shown only when the clipboard API is available).
   - Session replay: step through turns with j / k or the left and right arrow keys. */
(function () {
  "use strict";

  function setUpCopyButtons() {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
          button.textContent = "Copied";
          button.classList.add("copied");
          window.setTimeout(function () {
            button.textContent = "Copy";
            button.classList.remove("copied");
          }, 1500);
        });
      });
    });
  }

  function setUpTurnStepping() {
    var turns = Array.prototype.slice.call(document.querySelectorAll(".conversation .turn"));
    if (!turns.length) {
      return;
    }
    var hint = document.querySelector(".keyboard-hint");
    if (hint) {
      hint.hidden = false;
    }
    var current = -1;

    function mark(index) {
      turns.forEach(function (turn, i) {
        turn.classList.toggle("current", i === index);
      });
      document.querySelectorAll(".turn-index .turn-link").forEach(function (link, i) {
        link.classList.toggle("current", i === index);
        if (i === index) {
          link.setAttribute("aria-current", "step");
        } else {
          link.removeAttribute("aria-current");
        }
      });
      current = index;
    }

    function go(index) {
      if (index < 0 || index >= turns.length) {
        return;
      }
      var turn = turns[index];
      mark(index);
      turn.scrollIntoView({ block: "start" });
      turn.focus({ preventScroll: true });
      if (history.replaceState) {
        history.replaceState(null, "", "#" + turn.id);
      }
    }

    function fromHash() {
      var id = window.location.hash.slice(1);
      for (var i = 0; i < turns.length; i += 1) {
        if (turns[i].id === id) {
          mark(i);
          return;
        }
      }
    }

    fromHash();
    window.addEventListener("hashchange", fromHash);
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) {
        return;
      }
      var target = event.target;
      var tag = target && target.tagName;
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) {
        return;
      }
      if (event.key === "j" || event.key === "ArrowRight") {
        event.preventDefault();
        go(current < 0 ? 0 : current + 1);
      } else if (event.key === "k" || event.key === "ArrowLeft") {
        event.preventDefault();
        go(current < 0 ? 0 : current - 1);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopyButtons();
    setUpTurnStepping();
  });
})();
