/*
 * amodal chat widget — loader for classic <script> pages (no modules, no build step):
 *
 *   <script src="https://agent.example.com/widget/amodal/chat-widget-loader.js"></script>
 *   <script>
 *     AmodalChat.mount(document.getElementById("chat"), { serverUrl: "https://agent.example.com", ... })
 *       .then(function (chat) { window.chat = chat; });
 *   </script>
 *
 * It imports chat-widget.js (the ES module next to this file) on first use. `AmodalChat.mount` returns a
 * promise of the widget's controller; `AmodalChat.load()` returns the module itself.
 * A `amodal-chat:ready` event is dispatched on `window` once the module has loaded.
 */
(function () {
  "use strict";
  if (window.AmodalChat && window.AmodalChat.mount) return;

  var script = document.currentScript;
  var base = (script && script.src) || window.location.href;
  var moduleUrl = new URL("chat-widget.js", base).href;
  var pending = null;

  function load() {
    if (!pending) {
      pending = import(moduleUrl).then(function (module) {
        window.dispatchEvent(new CustomEvent("amodal-chat:ready", { detail: { version: module.VERSION } }));
        return module;
      }, function (error) {
        pending = null; // let a later call try again
        throw error;
      });
    }
    return pending;
  }

  function mount(element, options) {
    var target = typeof element === "string" ? document.querySelector(element) : element;
    if (!target) return Promise.reject(new Error("AmodalChat.mount: no element " + element));
    return load().then(function (module) { return module.mountChatWidget(target, options || {}); });
  }

  window.AmodalChat = { mount: mount, load: load, moduleUrl: moduleUrl };
})();
