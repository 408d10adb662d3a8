// essearch playground: plain JavaScript, no build step, no third-party code.
"use strict";

const $ = (sel) => document.querySelector(sel);
const keyInput = $("#api-key");
keyInput.value = sessionStorage.getItem("essearch-key") || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("essearch-key", keyInput.value);
  loadIndices();
});

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers.Authorization = "Bearer " + keyInput.value;
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = data.error ? data.error.message
      : Array.isArray(data.detail) ? data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : response.statusText;
    throw new Error(`HTTP ${response.status}: ${detail}`);
  }
  return data;
}

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function loadIndices() {
  const select = $("#index");
  try {
    const data = await api("/v1/indices");
    select.innerHTML = "";
    for (const entry of data.indices) {
      const option = document.createElement("option");
      option.textContent = entry.name;
      option.title = entry.exists ? "" : "does not exist yet";
      select.appendChild(option);
    }
    setStatus(`${data.indices.length} index(es) served`);
  } catch (err) {
    setStatus(err.message.includes("401") ? "this server needs an API key (top right)" : err.message, true);
  }
}

// -- filters: rows -> the filter language's JSON form ------------------------------------------
$("#add-filter").addEventListener("click", () => {
  const row = $("#filter-row").content.firstElementChild.cloneNode(true);
  row.querySelector(".f-remove").addEventListener("click", () => row.remove());
  $("#filters").appendChild(row);
});

function typed(text) {
  const trimmed = text.trim();
  return trimmed !== "" && !Number.isNaN(Number(trimmed)) ? Number(trimmed) : trimmed;
}

function filterJSON() {
  const parts = [];
  for (const row of document.querySelectorAll("#filters .filter")) {
    const field = row.querySelector(".f-field").value.trim();
    const op = row.querySelector(".f-op").value;
    const value = row.querySelector(".f-value").value;
    if (!field) continue;
    if (op === "exists" || op === "missing") parts.push({ [field]: { exists: op === "exists" } });
    else if (op === "in") parts.push({ [field]: { in: value.split(",").map(typed) } });
    else if (op === "contains" || op === "prefix") parts.push({ [field]: { [op]: value } });
    else parts.push({ [field]: { [op]: typed(value) } });
  }
  return parts.length ? parts : null;
}

function requestBody(mode) {
  const body = {
    query: $("#query").value,
    index: $("#index").value || undefined,
    mode,
    fusion: $("#fusion").value,
    k: Number($("#k").value) || 10,
    collapse: $("#collapse").checked,
    highlight: true,
    explain: true,
  };
  const filter = filterJSON();
  if (filter) body.filter = filter;
  return body;
}

// -- rendering ---------------------------------------------------------------------------------
function escapeHTML(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Highlight fragments come with <em> marks; everything else is escaped.
function snippetHTML(hit) {
  const fragment = (hit.highlights.text || hit.highlights.title || [])[0];
  const text = fragment ?? (hit.text || "").slice(0, 240);
  return escapeHTML(text).replace(/&lt;em&gt;/g, "<em>").replace(/&lt;\/em&gt;/g, "</em>");
}

function shortVectors(value) {
  if (Array.isArray(value)) {
    if (value.length > 8 && value.every((x) => typeof x === "number")) {
      return `[${value.slice(0, 3).map((x) => x.toFixed(4)).join(", ")}, … ${value.length} dims]`;
    }
    return value.map(shortVectors);
  }
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shortVectors(v)]));
  }
  return value;
}

function fmt(score) {
  return typeof score === "number" ? score.toFixed(4) : "–";
}

function legText(hit) {
  const parts = [];
  for (const leg of ["bm25", "knn"]) {
    const s = hit.legs[leg];
    if (s) parts.push(`${leg} <b>#${s.rank ?? "–"}</b> ${fmt(s.score)}`);
  }
  return parts.join(" · ");
}

function column(title, body, result) {
  const col = document.createElement("section");
  col.className = "column";
  col.id = "col-" + title;
  const timings = result.explain ? result.explain.timings : null;
  const took = timings ? `${timings.total_ms.toFixed(1)} ms` : "";
  col.innerHTML = `<h2>${escapeHTML(title)} <small>${escapeHTML(result.strategy)} · ${result.total ?? "?"} hit${result.total === 1 ? "" : "s"} · ${took}</small></h2>`;
  if (!result.hits.length) col.insertAdjacentHTML("beforeend", `<p class="hint">no hits</p>`);
  for (const hit of result.hits) {
    const meta = Object.entries(hit.metadata || {}).slice(0, 4).map(([k, v]) => `${escapeHTML(k)}=${escapeHTML(JSON.stringify(v))}`).join(" ");
    col.insertAdjacentHTML("beforeend", `
      <article class="hit" data-id="${escapeHTML(hit.id)}" data-doc="${escapeHTML(hit.doc_id)}">
        <div class="hit-head"><span class="rank">${hit.rank}</span>
          <span class="hit-title">${escapeHTML(hit.title || hit.doc_id || hit.id)}</span>
          <span class="score">${fmt(hit.score)}</span></div>
        <div class="legs">${legText(hit)}</div>
        <div class="snippet">${snippetHTML(hit)}</div>
        <div class="meta">${escapeHTML(hit.doc_id || "")} ${meta}</div>
      </article>`);
  }
  const sent = result.explain ? result.explain.requests.map(shortVectors) : [];
  col.insertAdjacentHTML("beforeend", `
    <details><summary>request body</summary>
      <p class="hint">sent to essearch (POST /v1/search)</p><pre>${escapeHTML(JSON.stringify(body, null, 2))}</pre>
      <p class="hint">sent to Elasticsearch (${sent.length} request${sent.length === 1 ? "" : "s"})</p><pre>${escapeHTML(JSON.stringify(sent, null, 2))}</pre>
    </details>`);
  return col;
}

let runs = 0; // #results[data-runs] counts finished searches (for scripts and tests)

async function run(modes) {
  const results = $("#results");
  results.className = modes.length > 1 ? "compare" : "";
  setStatus("searching…");
  const bodies = modes.map(requestBody);
  try {
    const answers = await Promise.all(bodies.map((body) => api("/v1/search", body)));
    results.innerHTML = "";
    answers.forEach((answer, i) => results.appendChild(column(modes[i], bodies[i], answer)));
    setStatus(modes.length > 1 ? "BM25, kNN and hybrid side by side" : `${answers[0].hits.length} hits`);
  } catch (err) {
    results.innerHTML = "";
    setStatus(err.message, true);
  }
  results.dataset.runs = String(++runs);
}

$("#search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run([$("#mode").value]);
});
$("#compare").addEventListener("click", () => run(["bm25", "knn", "hybrid"]));

loadIndices();
