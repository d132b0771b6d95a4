// The alert queue refreshes by itself: every few seconds the live part (tallies and table) is fetched again
// with the page's own filters and swapped in, unless the analyst is using a form inside it. Without
// JavaScript the page reloads itself instead (a <noscript> refresh), filters kept in its address.
(function () {
  "use strict";
  const live = document.getElementById("alerts-live");
  if (!live) return;
  const url = live.dataset.liveUrl;
  const period = Math.max(5, parseInt(live.dataset.refresh, 10) || 30) * 1000;
  function busy() {
    const active = document.activeElement;
    return document.hidden || (active && live.contains(active) && active.tagName !== "A" && active !== document.body);
  }
  async function refresh() {
    if (busy()) return;
    try {
      const response = await fetch(url + window.location.search, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      if (!response.ok || response.redirected) return; // logged out or refused: leave the page as it is
      live.innerHTML = await response.text();
      live.dataset.refreshedAt = new Date().toISOString();
    } catch (error) {
      // the network is down for a moment: try again at the next tick
    }
  }
  setInterval(refresh, period);
  live.refreshNow = refresh; // for tests and for the impatient
})();
