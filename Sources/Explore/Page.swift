// MARK: - The page's files, compiled into the binary
//
// Plain HTML, CSS and JavaScript, no libraries and no CDN: the server answers these three paths
// and nothing else from "disk" (there is none), so a static-file request cannot leave the page.
// The script talks to the JSON API documented in Server.swift.

/// The page's three files by URL path.
public enum PageFiles {
    public struct File: Sendable { public let contentType: String; public let text: String }
    public static let files: [String: File] = [
        "/": File(contentType: "text/html; charset=utf-8", text: indexHTML),
        "/index.html": File(contentType: "text/html; charset=utf-8", text: indexHTML),
        "/app.js": File(contentType: "text/javascript; charset=utf-8", text: appJS),
        "/style.css": File(contentType: "text/css; charset=utf-8", text: styleCSS),
    ]

    // MARK: index.html
    static let indexHTML = ##"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Excitation pullbacks — interactive</title>
<link rel="stylesheet" href="/style.css">
</head>
<body data-state="idle">
<header>
  <h1>Excitation pullbacks and counterfactuals</h1>
  <p>Pick a model, an image and a target class. The map is the pullback of the target logit to the input;
     the ascent pushes the image toward the target along it, inside an L2 ball.</p>
</header>
<main>
<section id="controls">
  <label>Model <select id="model"></select></label>
  <p id="model-note" class="note"></p>
  <details id="missing-box" hidden><summary class="note">Models whose weights are missing</summary><ul id="missing" class="note"></ul></details>
  <fieldset>
    <legend>Image</legend>
    <label id="digit-row">Test digit <input id="digit" type="number" min="0" max="999" value="0"></label>
    <label id="example-row">Example <select id="example"></select></label>
    <label>Upload PNG / JPEG <input id="upload" type="file" accept="image/png,image/jpeg"></label>
    <p id="image-note" class="note"></p>
  </fieldset>
  <fieldset>
    <legend>Target class</legend>
    <input id="target-search" type="search" placeholder="search by name or index" autocomplete="off">
    <select id="target" size="6"></select>
  </fieldset>
  <fieldset>
    <legend>Method</legend>
    <label>Method <select id="method">
      <option value="excitation_pullback">excitation pullback</option>
      <option value="gradient">vanilla gradient</option>
      <option value="input_x_gradient">input × gradient</option>
      <option value="smoothgrad">SmoothGrad</option>
      <option value="integrated_gradients">integrated gradients</option>
    </select></label>
    <label>Gate <select id="gate">
      <option value="sigmoid">sigmoid(z/T) (paper A)</option>
      <option value="normal_cdf">normal CDF Φ(z/T)</option>
    </select></label>
    <label>Temperature T <input id="T" type="range" min="-3" max="2" step="0.01" value="-0.52">
      <output id="T-value">0.3</output></label>
  </fieldset>
  <fieldset>
    <legend>Ascent</legend>
    <label>Steps <input id="steps" type="range" min="0" max="20" step="1" value="5"><output id="steps-value">5</output></label>
    <label>alpha (step length) <input id="alpha" type="number" min="0" max="1000" step="any" value="1.5"></label>
    <label>eps (ball radius) <input id="eps" type="number" min="0" max="10000" step="any" value="7"></label>
    <label id="size-row">Input size <input id="size" type="number" min="32" max="224" step="1" value="224"></label>
  </fieldset>
  <div class="buttons">
    <button id="run" type="button">Run ascent</button>
    <button id="strips" type="button">Strips</button>
    <a id="recipe" href="#" download>Save as recipe</a>
  </div>
  <progress id="progress" max="1" value="0"></progress>
  <p id="status" class="note">ready</p>
  <p id="error" role="alert"></p>
</section>
<section id="results">
  <div class="row">
    <figure><img id="img-input" alt="input"><figcaption>input <span id="label"></span></figcaption></figure>
    <figure><img id="img-map" alt="attribution map"><figcaption>pullback of the target logit (red +, blue −)</figcaption></figure>
    <figure>
      <div id="compare" class="compare">
        <img id="img-after" alt="perturbed">
        <div id="compare-before" class="before"><img id="img-before" alt="before"></div>
      </div>
      <input id="compare-slider" type="range" min="0" max="100" value="50" aria-label="before / after">
      <figcaption>before | after the ascent (drag)</figcaption>
    </figure>
    <figure><img id="img-diff" alt="perturbed minus clean"><figcaption>perturbed − clean</figcaption></figure>
  </div>
  <div class="row">
    <div><h3>Top 5 before</h3><ol id="top5-before"></ol></div>
    <div><h3>Top 5 after</h3><ol id="top5-after"></ol></div>
    <div><h3>Target logit along the steps</h3><svg id="logit-chart" width="320" height="160" role="img"></svg></div>
  </div>
  <h3>Temperature strip: the gradient (T → 0) turning into the linearised model (large T)</h3>
  <div id="strip-temperature" class="strip"></div>
  <h3>Steps strip: perturbed − clean after 1, 5 and 10 steps</h3>
  <div id="strip-steps" class="strip"></div>
  <p class="note">Every setting is in the address bar: copy it to share this view.</p>
</section>
</main>
<script src="/app.js"></script>
</body>
</html>
"""##

    // MARK: app.js
    static let appJS = ##"""
// The page's script: reads and writes every setting in the URL, asks the server's JSON API and
// draws what it answers. No libraries.
"use strict";
const $ = (id) => document.getElementById(id);
const client = "page-" + Math.random().toString(36).slice(2, 10);
let models = [], examples = [], classNames = [], runTimer = null, progressTimer = null;
let current = { model: "mnist_cnn", weights: "trained" };

// MARK: settings <-> URL
const T_OF = (v) => Number(Math.pow(10, Number(v)).toPrecision(2));
const LOG_T = (t) => Math.log10(t).toFixed(2);

function settings() {
  const isDigit = current.model === "mnist_cnn";
  const q = new URLSearchParams();
  q.set("model", current.model); q.set("weights", current.weights);
  q.set("image", $("image-note").dataset.upload || (isDigit ? "digit:" + ($("digit").value || 0) : "example:" + $("example").value));
  q.set("target", $("target").value || "0");
  q.set("method", $("method").value); q.set("gate", $("gate").value);
  q.set("T", String(T_OF($("T").value))); q.set("steps", $("steps").value);
  q.set("alpha", $("alpha").value); q.set("eps", $("eps").value);
  if (!isDigit) q.set("size", $("size").value);
  return q;
}

function apply(q) {
  const m = q.get("model") || "mnist_cnn";
  const entry = models.find((e) => e.model === m && e.weights === (q.get("weights") || e.weights)) || models[0];
  current = { model: entry.model, weights: entry.weights };
  $("model").value = entry.model + "/" + entry.weights;
  const d = new URLSearchParams(entry.defaults);
  const get = (k) => q.get(k) ?? d.get(k);
  const image = get("image") || "";
  $("image-note").dataset.upload = image.startsWith("upload:") ? image : "";
  $("image-note").textContent = image.startsWith("upload:") ? "using your upload (" + image.slice(7) + ")" : "";
  if (image.startsWith("digit:")) $("digit").value = image.slice(6);
  if (image.startsWith("example:")) $("example").value = image.slice(8);
  $("method").value = get("method"); $("gate").value = get("gate");
  $("T").value = LOG_T(Number(get("T"))); $("steps").value = get("steps");
  $("alpha").value = get("alpha"); $("eps").value = get("eps");
  if (get("size")) $("size").value = get("size");
  showModel(entry);
  return loadClasses("", Number(get("target")));
}

function syncURL() {
  const q = settings();
  history.replaceState(null, "", "?" + q.toString());
  $("T-value").textContent = q.get("T"); $("steps-value").textContent = q.get("steps");
  $("recipe").href = "/api/recipe?" + q.toString();
  $("gate").disabled = q.get("method") !== "excitation_pullback";
  return q;
}

function showModel(entry) {
  const isDigit = entry.model === "mnist_cnn";
  $("digit-row").style.display = isDigit ? "" : "none";
  $("example-row").style.display = isDigit ? "none" : "";
  $("size-row").style.display = isDigit ? "none" : "";
  $("model-note").textContent = entry.note;
}

// MARK: server calls
async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) { const e = new Error(body.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
  return body;
}

async function loadClasses(query, select) {
  const r = await getJSON("/api/classes?model=" + current.model + "&q=" + encodeURIComponent(query));
  const keep = select ?? Number($("target").value || 0);
  const list = r.classes.slice();
  if (!list.some((c) => c.index === keep) && query === "") list.unshift({ index: keep, name: "class " + keep });
  $("target").innerHTML = "";
  for (const c of list) {
    const o = document.createElement("option");
    o.value = c.index; o.textContent = String(c.index) === c.name ? c.name : c.index + " " + c.name;
    $("target").appendChild(o);
  }
  if (list.some((c) => c.index === keep)) $("target").value = keep;
  else if (list.length) $("target").value = list[0].index;
  if (r.count > list.length) {
    const o = document.createElement("option"); o.disabled = true; o.textContent = "… " + (r.count - list.length) + " more: refine the search";
    $("target").appendChild(o);
  }
}

function watchProgress(on) {
  clearInterval(progressTimer);
  if (!on) return;
  progressTimer = setInterval(async () => {
    try {
      const p = await getJSON("/api/progress?client=" + client);
      if (p.total > 0) { $("progress").max = p.total; $("progress").value = p.done; $("status").textContent = p.note; }
    } catch (e) { /* progress is best effort */ }
  }, 250);
}

async function run() {
  const q = syncURL();
  q.set("client", client);
  document.body.dataset.state = "running";
  $("error").textContent = ""; $("status").textContent = "computing…"; $("progress").removeAttribute("value");
  watchProgress(true);
  try {
    const r = await getJSON("/api/explain?" + q.toString());
    show(r);
    document.body.dataset.state = "done";
    $("status").textContent = "done in " + Math.round(r.milliseconds.compute) + " ms";
    $("progress").max = 1; $("progress").value = 1;
  } catch (e) {
    if (e.status === 409) return;   // replaced by a newer request
    document.body.dataset.state = "error";
    $("error").textContent = e.message; $("status").textContent = "failed";
  } finally { watchProgress(false); }
}

async function runStrips() {
  const q = syncURL();
  q.set("client", client);
  for (const kind of ["temperature", "steps"]) {
    const box = $("strip-" + kind);
    box.dataset.state = "running";
    try {
      const r = await getJSON("/api/strip?kind=" + kind + "&" + q.toString());
      box.innerHTML = "";
      for (const c of r.cells) {
        const f = document.createElement("figure");
        f.innerHTML = '<img alt=""><figcaption></figcaption>';
        f.querySelector("img").src = c.image;
        f.querySelector("figcaption").textContent = c.title + " · logit " + c.target_logit.toFixed(2);
        box.appendChild(f);
      }
      box.dataset.state = "done";
    } catch (e) {
      if (e.status !== 409) { box.dataset.state = "error"; box.textContent = e.message; }
    }
  }
}

// MARK: drawing
function show(r) {
  $("img-input").src = r.images.input; $("img-map").src = r.images.map;
  $("img-before").src = r.images.input; $("img-after").src = r.images.perturbed;
  $("img-diff").src = r.images.difference;
  $("label").textContent = r.label ? "(label: " + r.label.name + ")" : "";
  for (const [id, list] of [["top5-before", r.top5_before], ["top5-after", r.top5_after]]) {
    $(id).innerHTML = "";
    for (const p of list) {
      const li = document.createElement("li");
      li.textContent = p.name + " — " + (100 * p.probability).toFixed(1) + "% (logit " + p.logit.toFixed(2) + ")";
      if (p.index === r.target.index) li.style.fontWeight = "bold";
      li.dataset.index = p.index;
      $(id).appendChild(li);
    }
  }
  chart(r.target_logits, r.target.name);
  document.body.dataset.view = r.view;
}

function chart(values, name) {
  const svg = $("logit-chart"), W = 320, H = 160, pad = 30;
  const lo = Math.min(...values), hi = Math.max(...values), span = (hi - lo) || 1;
  const x = (i) => pad + (W - 2 * pad) * (values.length > 1 ? i / (values.length - 1) : 0);
  const y = (v) => H - pad - (H - 2 * pad) * (v - lo) / span;
  const pts = values.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
  svg.innerHTML =
    '<line x1="' + pad + '" y1="' + (H - pad) + '" x2="' + (W - pad) + '" y2="' + (H - pad) + '" stroke="#888"/>' +
    '<polyline fill="none" stroke="#c0392b" stroke-width="2" points="' + pts + '"/>' +
    values.map((v, i) => '<circle r="3" fill="#c0392b" cx="' + x(i).toFixed(1) + '" cy="' + y(v).toFixed(1) + '"/>').join("") +
    '<text x="' + pad + '" y="14" font-size="11">' + name.replace(/[<&]/g, "") + ": " + values[0].toFixed(2) + " → " + values[values.length - 1].toFixed(2) + '</text>' +
    '<text x="' + (W - pad) + '" y="' + (H - 8) + '" font-size="10" text-anchor="end">step</text>';
}

// MARK: events
function scheduleRun() { syncURL(); clearTimeout(runTimer); runTimer = setTimeout(run, 250); }

async function start() {
  const info = await getJSON("/api/models");
  models = info.models; examples = info.examples;
  for (const m of models) {
    const o = document.createElement("option");
    o.value = m.model + "/" + m.weights; o.textContent = m.label + (m.available ? "" : " — missing");
    o.disabled = !m.available;
    $("model").appendChild(o);
  }
  for (const m of models.filter((m) => !m.available)) {
    const li = document.createElement("li"); li.textContent = m.label + ": " + m.note; $("missing").appendChild(li);
    $("missing-box").hidden = false;
  }
  for (const e of examples) {
    const o = document.createElement("option"); o.value = e.name; o.textContent = e.name; $("example").appendChild(o);
  }
  await apply(new URLSearchParams(location.search));
  syncURL();
  $("model").addEventListener("change", async () => {
    const [model, weights] = $("model").value.split("/");
    const q = new URLSearchParams(models.find((e) => e.model === model && e.weights === weights).defaults);
    q.set("weights", weights);
    await apply(q); syncURL();
  });
  $("target-search").addEventListener("input", () => loadClasses($("target-search").value.trim()).then(syncURL));
  for (const id of ["target", "method", "gate", "digit", "example", "alpha", "eps", "size"]) {
    $(id).addEventListener("change", () => { if (id === "digit" || id === "example") { $("image-note").dataset.upload = ""; $("image-note").textContent = ""; } syncURL(); });
  }
  for (const id of ["T", "steps"]) $(id).addEventListener("input", () => { syncURL(); if (document.body.dataset.view) scheduleRun(); });
  $("run").addEventListener("click", run);
  $("strips").addEventListener("click", runStrips);
  $("compare-slider").addEventListener("input", () => { $("compare-before").style.width = $("compare-slider").value + "%"; });
  $("upload").addEventListener("change", async () => {
    const f = $("upload").files[0];
    if (!f) return;
    try {
      const r = await fetch("/api/upload", { method: "POST", body: f });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error);
      $("image-note").dataset.upload = body.image; $("image-note").textContent = "using your upload (" + body.image.slice(7) + ")";
      syncURL();
    } catch (e) { $("error").textContent = e.message; }
  });
  document.body.dataset.ready = "yes";
}
start().catch((e) => { $("error").textContent = e.message; });
"""##

    // MARK: style.css
    static let styleCSS = ##"""
body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #fafafa; }
header { padding: 0.6em 1.2em; background: #243447; color: #fff; }
header h1 { margin: 0.2em 0; font-size: 1.4em; }
header p { margin: 0.2em 0 0.4em; font-size: 0.9em; opacity: 0.9; }
main { display: flex; gap: 1.2em; padding: 1em; align-items: flex-start; }
#controls { width: 300px; flex: none; display: flex; flex-direction: column; gap: 0.5em; }
#controls label { display: block; font-size: 0.9em; margin: 0.25em 0; }
#controls select, #controls input[type=number], #controls input[type=search] { width: 100%; box-sizing: border-box; }
#controls input[type=range] { width: 70%; vertical-align: middle; }
fieldset { border: 1px solid #ccd; border-radius: 6px; padding: 0.4em 0.6em; }
#target { width: 100%; }
.buttons { display: flex; gap: 0.5em; align-items: center; }
button { padding: 0.4em 0.9em; }
progress { width: 100%; }
.note { font-size: 0.8em; color: #555; margin: 0.2em 0; }
#error { color: #b00020; font-size: 0.9em; white-space: pre-wrap; }
#results { flex: 1; min-width: 0; }
.row { display: flex; gap: 1em; flex-wrap: wrap; }
figure { margin: 0; }
figure img, .compare { width: 224px; height: 224px; image-rendering: pixelated; background: #eee; display: block; }
figcaption { font-size: 0.8em; color: #444; max-width: 224px; }
.compare { position: relative; overflow: hidden; }
.compare img { position: absolute; top: 0; left: 0; }
.compare .before { position: absolute; top: 0; left: 0; height: 224px; width: 50%; overflow: hidden; border-right: 2px solid #fff; }
#compare-slider { width: 224px; }
ol { font-size: 0.85em; padding-left: 1.4em; min-width: 220px; }
.strip { display: flex; gap: 0.4em; flex-wrap: wrap; }
.strip figure { width: 112px; }
.strip figure img { width: 112px; height: 112px; }
.strip figcaption { font-size: 0.75em; max-width: 112px; }
body[data-state=running] #results { opacity: 0.7; }
"""##
}
