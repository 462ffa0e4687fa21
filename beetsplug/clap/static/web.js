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

function trackLabel(result) {
  return [result.artist, trackName(result)].filter(Boolean).join(" – ");
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
  like.addEventListener("click", () => moreLike(result.id, trackLabel(result)));
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

async function search(q, n) {
  say("Searching…", false);
  try {
    const body = await getJSON(`/api/search?q=${encodeURIComponent(q)}&n=${n}`);
    show(body, `Results for "${q}"`);
  } catch (err) {
    $("results").textContent = "";
    $("explanation").hidden = true;
    say(err.message, true);
  }
}

async function moreLike(id, label) {
  say("Searching…", false);
  try {
    const body = await getJSON(`/api/similar/${id}?n=${$("n").value}`);
    show(body, `More like ${label}`);
    window.scrollTo({ top: 0 });
  } catch (err) {
    say(err.message, true);
  }
}

async function drawMap() {
  try {
    const data = await getJSON("/api/map");
    $("map-message").textContent =
      `${data.ids.length} tracks; regions named by the text model. Click a point for more like it.`;
    clapMap($("map"), data, moreLike);
  } catch (err) {
    $("map-message").textContent = err.message;
    $("map-message").className = "error";
  }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = $("q").value;
  const params = new URLSearchParams({ q });
  history.replaceState(null, "", `?${params}`);
  search(q, $("n").value);
});

const initial = new URLSearchParams(location.search).get("q");
if (initial) {
  $("q").value = initial;
  search(initial, $("n").value);
}
drawMap();
