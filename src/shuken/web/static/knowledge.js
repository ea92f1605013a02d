// Knowledge collection page: confirmations for delete forms, and uploads (drop zone or file input) with
// per-file upload progress, then the ingestion job's per-file status polled until the job finishes.
// All visible text comes from the page's translated JSON block; file names and errors are set as textContent.
"use strict";

(function () {
  const POLL_MS = 700;
  const textsNode = document.getElementById("knowledge-texts");
  const T = textsNode ? JSON.parse(textsNode.textContent) : {};
  const lang = document.documentElement.lang || "en";
  const numberFormat = new Intl.NumberFormat(lang);

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (match, key) => (key in values ? String(values[key]) : match));
  }

  function size(bytes) {
    const units = [["GB", 1 << 30], ["MB", 1 << 20], ["KB", 1 << 10]];
    for (const [unit, scale] of units) {
      if (bytes >= scale) return numberFormat.format(Math.round((bytes / scale) * 10) / 10) + " " + unit;
    }
    return numberFormat.format(bytes) + " B";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Delete buttons ask first; delegated, so rows that replace the table later are covered too.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset ? event.target.dataset.confirm : null;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  const uploader = document.getElementById("uploader");
  if (!uploader) return;
  const input = document.getElementById("file-input");
  const dropzone = document.getElementById("dropzone");
  const statusArea = document.getElementById("upload-status");

  // A file dropped just beside the zone must not make the browser navigate away to it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (!dropzone.contains(event.target)) event.preventDefault();
    });
  }
  dropzone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragleave", (event) => {
    if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove("over");
  });
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    upload(Array.from(event.dataTransfer.files || []));
  });
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = "";  // choosing the same file again must upload it again
    upload(files);
  });

  // One row per file: name, size, a progress bar, a status badge and (on failure) the reason.
  function fileRow(name, bytes) {
    const row = el("li", "upload-item");
    const head = el("div", "upload-line");
    const label = el("span", "file-name", name);
    label.dir = "auto";
    head.append(label);
    const meta = el("span", "file-meta muted small", bytes === null ? "" : size(bytes));
    head.append(meta);
    const badge = el("span", "badge file-status");
    head.append(badge);
    row.append(head);
    const bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", fill(T.progress_label, { name }));
    row.append(bar);
    const error = el("p", "file-error");
    error.hidden = true;
    row.append(error);
    return { row, meta, badge, bar, error, state: "" };
  }

  function setStatus(item, state, text, kind) {
    const key = state + "|" + text;
    if (item.state === key) return;  // unchanged: keep the live region quiet
    item.state = key;
    item.badge.textContent = text;
    item.badge.className = "badge file-status" + (kind ? " " + kind : "");
    item.row.dataset.status = state;
  }

  function setError(item, message) {
    if (!message) return;
    if (item.error.textContent !== message) item.error.textContent = message;
    item.error.hidden = false;
  }

  function upload(files) {
    if (!files.length) return;
    const batch = el("section", "upload-batch");
    const summary = el("p", "batch-summary", fill(T.batch_uploading, { count: numberFormat.format(files.length) }));
    const list = el("ul", "upload-list");
    batch.append(summary, list);
    statusArea.prepend(batch);
    const items = files.map((file) => {
      const item = fileRow(file.name, file.size);
      setStatus(item, "uploading", fill(T.uploading, { percent: "0%" }));
      list.append(item.row);
      return item;
    });

    const body = new FormData();
    for (const file of files) body.append("files", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", uploader.dataset.uploadUrl);
    request.setRequestHeader("X-CSRF-Token", uploader.dataset.csrf);
    request.setRequestHeader("Accept", "application/json");

    // The multipart body carries the files in order, so the bytes sent so far say how far each file got.
    const total = files.reduce((sum, f) => sum + f.size, 0);
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      const sent = (event.loaded / event.total) * total;
      let offset = 0;
      files.forEach((file, i) => {
        const share = file.size ? Math.min(1, Math.max(0, (sent - offset) / file.size)) : (sent >= offset ? 1 : 0);
        offset += file.size;
        const percent = Math.round(share * 100);
        items[i].bar.value = percent;
        setStatus(items[i], "uploading", percent === 100 ? T.uploaded : fill(T.uploading, { percent: percent + "%" }));
      });
    });
    request.addEventListener("load", () => {
      let payload = null;
      try {
        payload = JSON.parse(request.responseText);
      } catch (err) {
        payload = null;
      }
      if (request.status === 202 && payload && payload.id) {
        track(batch, summary, list, payload);
        return;
      }
      const message = payload && payload.error && payload.error.message
        ? payload.error.message : request.status + " " + request.statusText;
      refused(summary, items, T.refused + " " + message);
    });
    request.addEventListener("error", () => refused(summary, items, T.network));
    request.send(body);
  }

  function refused(summary, items, message) {
    summary.textContent = message;
    summary.className = "batch-summary alert error";
    for (const item of items) {
      item.bar.hidden = true;
      setStatus(item, "refused", T.not_uploaded, "bad");
    }
  }

  // The job's own file list replaces the browser's: a .zip becomes its members, names come back cleaned.
  function track(batch, summary, list, job) {
    list.replaceChildren();
    const rows = [];
    let failures = 0;

    function render(current) {
      const done = current.status === "done" || current.status === "failed";
      let firstPending = true;
      current.files.forEach((file, i) => {
        if (!rows[i]) {
          rows[i] = fileRow(file.name, null);
          list.append(rows[i].row);
        }
        const item = rows[i];
        if (file.status === "pending") {
          const running = current.status === "running" && firstPending;
          firstPending = false;
          if (running) item.bar.removeAttribute("value");  // indeterminate while this file is indexed
          else item.bar.value = 0;
          setStatus(item, running ? "indexing" : "queued", running ? T.indexing : T.queued, running ? "warn" : "");
          return;
        }
        item.bar.value = 100;
        item.bar.hidden = true;
        if (file.status === "error") {
          setStatus(item, "error", T.error, "bad");
          setError(item, file.error);
          return;
        }
        setStatus(item, file.status, T[file.status] || file.status, "ok");
        if (file.status !== "unchanged") {
          const chunks = fill(file.chunks === 1 ? T.chunks_one : T.chunks_other,
            { num: numberFormat.format(file.chunks) });
          if (item.meta.textContent !== chunks) item.meta.textContent = chunks;
        }
      });
      const t = current.totals;
      if (!done) {
        const text = fill(T.batch_progress, { done: numberFormat.format(t.processed), total: numberFormat.format(t.files) });
        if (summary.textContent !== text) summary.textContent = text;
        return false;
      }
      summary.textContent = fill(T.batch_done, {
        added: numberFormat.format(t.indexed + t.replaced),
        unchanged: numberFormat.format(t.unchanged),
        failed: numberFormat.format(t.errors),
      });
      summary.className = "batch-summary alert " + (t.errors || current.status === "failed" ? "error" : "ok");
      if (current.status === "failed" && current.error) {
        const note = el("p", "file-error", T.job_failed + " " + current.error);
        batch.append(note);
      }
      batch.dataset.finished = "true";
      return true;
    }

    async function poll() {
      try {
        const response = await fetch(uploader.dataset.jobUrl + encodeURIComponent(job.id),
          { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
        const payload = await response.json();
        if (!response.ok) throw new Error(payload && payload.error ? payload.error.message : String(response.status));
        failures = 0;
        if (render(payload)) {
          await refreshDocuments();
          return;
        }
      } catch (err) {
        failures += 1;
        if (failures >= 5) {
          summary.textContent = T.status_lost + " " + err.message;
          summary.className = "batch-summary alert error";
          return;
        }
      }
      window.setTimeout(poll, POLL_MS);
    }

    batch.dataset.job = job.id;
    if (!render(job)) window.setTimeout(poll, POLL_MS);
    else refreshDocuments();
  }

  // The server renders the document list (localised dates, sizes, language names): take it from a fresh
  // copy of this page instead of rebuilding it here, so the upload progress above stays on screen.
  async function refreshDocuments() {
    const response = await fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ["documents", "collection-summary"]) {
      const next = fresh.getElementById(id);
      const current = document.getElementById(id);
      if (next && current) current.replaceWith(document.importNode(next, true));
    }
  }
})();
