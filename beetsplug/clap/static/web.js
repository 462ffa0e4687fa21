// The clap-web page: search, results with players, "more like this", the map.
"use strict";

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function getJSON(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error("the clap-web server does not answer: is it still running?");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok || body === null) {
    throw new Error((body && body.error) || `the server answered ${response.status}`);
  }
  return body;
}

// A track without a title is named by its file, as the command line lists it.
function trackName(result) {
  return result.title || (result.path || "").split(/[\\/]/).pop() || "?";
}

function resultItem(result) {
  const li = document.createElement("li");
  li.className = "result";
  li.dataset.id = result.id;
  const line = document.createElement("div");
  line.className = "line";
  const parts = [
    ["score", result.score.toFixed(4)],
    ["artist", result.artist || ""],
    ["title", trackName(result)],
    ["album", result.album || ""],
  ];
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    // How a description's score adds up for this track, on hover.
    if (cls === "score" && result.terms) span.title = result.terms;
    line.append(span);
  }
  const controls = document.createElement("div");
  controls.className = "controls";
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "none";
  audio.src = `/api/audio/${result.id}`;
  const like = document.createElement("button");
  like.type = "button";
  like.className = "like";
  like.textContent = "more like this";
  like.addEventListener("click", () => moreLike(result.id));
  controls.append(audio, like);
  li.append(line, controls);
  return li;
}

function show(body, heading) {
  const list = $("results");
  list.textContent = "";
  const results = body.results;
  const explanation = $("explanation");
  if (body.explanation) {
    explanation.querySelector("pre").textContent = body.explanation;
    explanation.hidden = false;
  } else {
    explanation.hidden = true;
  }
  for (const result of results) list.append(resultItem(result));
  const none = body.note ? `nothing found: ${body.note}` : "nothing found";
  say(results.length ? `${heading}: ${results.length} tracks` : `${heading}: ${none}`, false);
}

function clear(message, isError) {
  $("results").textContent = "";
  $("explanation").hidden = true;
  say(message, isError);
}

// The view shown is the page's address, so a reload, a link, Back and
// Forward show it again: ?q=TEXT&n=N for a search, ?like=ID&n=N for the
// tracks that sound like item ID; q null and no like: nothing asked yet.
function viewOf(query) {
  const params = new URLSearchParams(query);
  // ?q= (an empty box submitted) is a search too: it says what is missing.
  const q = params.has("q") ? params.get("q") : null;
  return { q, like: params.get("like"), n: params.get("n") };
}

function address(view) {
  const params = new URLSearchParams();
  if (view.like) params.set("like", view.like);
  else if (view.q !== null) params.set("q", view.q);
  if (view.n) params.set("n", view.n);
  return `?${params}`;
}

// The results count of the address, in the list even when it offers no
// such choice (?n=5); without one, the list's default.
function setCount(n) {
  const select = $("n");
  if (!n) n = [...select.options].find((o) => o.defaultSelected).value;
  if (![...select.options].some((o) => o.value === n)) select.add(new Option(n, n));
  select.value = n;
}

let asked = 0; // the latest request: an answer to an earlier one comes too late

async function showView(view) {
  // Counted before the empty view too: Back to it outdates a search in flight.
  const mine = ++asked;
  if (!view.like && view.q === null) {
    clear("", false);
    return;
  }
  say("Searching…", false);
  const n = encodeURIComponent($("n").value);
  try {
    if (view.like) {
      const body = await getJSON(`/api/similar/${encodeURIComponent(view.like)}?n=${n}`);
      if (mine === asked) show(body, `More like ${body.track}`);
    } else {
      const body = await getJSON(`/api/search?q=${encodeURIComponent(view.q)}&n=${n}`);
      if (mine === asked) show(body, `Results for "${view.q}"`);
    }
  } catch (err) {
    if (mine === asked) clear(err.message, true);
  }
}

// A new view: a new entry in the history, so Back returns to the last one.
function go(view) {
  const url = address(view);
  if (url !== location.search) history.pushState(null, "", url);
  return showView(view);
}

// The view of the address as it stands (on load, Back and Forward).
function restore() {
  const view = viewOf(location.search);
  setCount(view.n);
  $("q").value = view.like ? "" : view.q || "";
  return showView(view);
}

function moreLike(id) {
  $("q").value = "";
  window.scrollTo({ top: 0 });
  return go({ q: null, like: String(id), n: $("n").value });
}

async function drawMap() {
  try {
    const data = await getJSON("/api/map");
    $("map-message").textContent =
      `${data.ids.length} tracks; regions named by the text model. Click a point for more like it.`;
    clapMap($("map"), data, (id) => moreLike(id));
  } catch (err) {
    $("map-message").textContent = err.message;
    $("map-message").className = "error";
  }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  go({ q: $("q").value, like: null, n: $("n").value });
});

// Another count shows the same view again, with as many results.
$("n").addEventListener("change", () => {
  const view = { ...viewOf(location.search), n: $("n").value };
  history.replaceState(null, "", address(view));
  showView(view);
});

window.addEventListener("popstate", restore);
restore();
drawMap();
