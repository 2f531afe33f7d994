// Runs before anything else: any uncaught error or rejected promise of the
// page shows in #report-errors as an element of class `js-error`, and
// #report-status turns to `error`, so a broken page cannot pass for a
// working one.
(function () {
  'use strict';
  var pending = [];
  function show(text) {
    var box = document.getElementById('report-errors');
    var status = document.getElementById('report-status');
    if (!box || !status) {
      pending.push(text);
      return;
    }
    var div = document.createElement('div');
    div.className = 'js-error';
    div.textContent = 'script error: ' + text;
    box.appendChild(div);
    status.setAttribute('data-state', 'error');
    status.textContent = 'error';
  }
  window.addEventListener('error', function (e) {
    var where = e.lineno ? ' (line ' + e.lineno + ':' + e.colno + ')' : '';
    show(String(e.message || e.error || 'unknown error') + where);
  });
  window.addEventListener('unhandledrejection', function (e) {
    show('unhandled rejection: ' + String(e.reason));
  });
  document.addEventListener('DOMContentLoaded', function () {
    var list = pending;
    pending = [];
    list.forEach(show);
  });
})();
