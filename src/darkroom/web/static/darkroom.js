// darkroom's pages: the Process modal, confirmations, the job page's live log and state,
// running times that tick.
// Plain script, no build step; htmx does the rest.
(function () {
  "use strict";

  // A fragment swapped into the modal opens it; the pages stay usable without JavaScript.
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target.id !== "modal-body") return;
    const modal = document.getElementById("modal");
    if (!modal.open) modal.showModal();
  });

  // Forms that destroy something ask first; the question is in data-confirm (text, not code).
  // Forms marked data-refresh (the Process flow) re-render their block in place: on a change
  // (the next choice appears) and on submit (errors by field, or htmx follows HX-Redirect).
  // Delegated from the document, so a form swapped in a moment ago already behaves.
  function refresh(form, method) {
    const block = form.closest(".process");
    if (!window.htmx || !block) return false;
    const url = method === "GET"
      ? `${form.action}?${new URLSearchParams(new FormData(form))}` : form.action;
    window.htmx.ajax(method, url, { source: form, target: block, swap: "outerHTML" });
    return true;
  }
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form.dataset && form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    } else if (form.hasAttribute("data-refresh") && refresh(form, form.method.toUpperCase())) {
      event.preventDefault();
    }
  });
  document.addEventListener("change", (event) => {
    const form = event.target.form;
    if (form && form.id === "choose" && form.hasAttribute("data-refresh")) refresh(form, "GET");
  });

  // The asset view's Show checkboxes hide or show one label's shapes.
  document.addEventListener("change", (event) => {
    const id = event.target.dataset && event.target.dataset.toggleLabel;
    if (!id) return;
    for (const shape of document.querySelectorAll(`#asset-frame .shape[data-label="${id}"]`)) {
      shape.classList.toggle("hidden", !event.target.checked);
    }
  });

  // Code editors: a gutter of line numbers that scrolls with the text; Tab indents (4 spaces)
  // instead of leaving the field, Shift+Tab outdents; Escape then Tab leaves it.
  function editor(area) {
    const gutter = area.parentElement.querySelector(".gutter");
    let escaped = false;
    const number = () => {
      const count = area.value.split("\n").length;
      gutter.textContent = Array.from({ length: count }, (_, i) => i + 1).join("\n");
      gutter.scrollTop = area.scrollTop;
    };
    area.addEventListener("input", number);
    area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { escaped = true; return; }
      if (event.key !== "Tab" || escaped) { escaped = false; return; }
      event.preventDefault();
      const start = area.selectionStart;
      const lineStart = area.value.lastIndexOf("\n", start - 1) + 1;
      if (event.shiftKey) {
        const spaces = area.value.slice(lineStart, lineStart + 4).match(/^ */)[0].length;
        area.setRangeText("", lineStart, lineStart + spaces, "preserve");
      } else {
        area.setRangeText("    ", start, area.selectionEnd, "end");
      }
      number();
    });
    number();
    // A trace's link (#L12) selects that line of the code being edited.
    const wanted = /^#L(\d+)$/.exec(window.location.hash);
    if (wanted) {
      const lines = area.value.split("\n");
      const line = Math.min(Number(wanted[1]), lines.length) - 1;
      const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
      area.focus();
      area.setSelectionRange(start, start + lines[line].length);
      area.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(area).lineHeight));
      gutter.scrollTop = area.scrollTop;
    }
  }
  function editors() { for (const area of document.querySelectorAll("textarea[data-editor]")) editor(area); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", editors);
  else editors();

  // Keys: "/" goes to the page's first filter or search field, "p" opens Process (a version's
  // or a model version's); not while typing, nor with a modifier.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog[open]")) return;
    if (event.key === "/") {
      const field = document.querySelector("[data-search], form.filters input, form.filters select");
      if (field) { event.preventDefault(); field.focus(); }
    } else if (event.key === "p") {
      const process = document.querySelector("#process, #process-model");
      if (process) { event.preventDefault(); process.click(); }
    }
  });

  // Upload on a version's page: files or folders (dropped or chosen), one request per image so
  // that each refused one is listed with the server's reason; two at a time, with a bar.
  async function filesOfDrop(items) {
    const out = [];
    const walk = async (entry) => {
      if (entry.isFile) {
        out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
          if (!batch.length) break;
          for (const child of batch) await walk(child);
        }
      }
    };
    for (const item of items) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) await walk(entry);
    }
    return out;
  }
  async function upload(zone, files) {
    const status = zone.querySelector("#upload-status");
    const rejected = zone.querySelector("#upload-rejected");
    const bar = zone.querySelector("#upload-progress");
    const images = files.filter((f) => !f.name.startsWith("."));
    let done = 0, stored = 0, refused = 0, next = 0;
    bar.hidden = false;
    const show = () => {
      status.textContent = `${stored} of ${images.length} uploaded` + (refused ? `, ${refused} refused` : "");
      bar.firstElementChild.style.width = `${(100 * done) / Math.max(images.length, 1)}%`;
    };
    const one = async (file) => {
      const body = new FormData();
      body.append("file", file, file.webkitRelativePath || file.name);
      let reason = null;
      try {
        const response = await fetch(zone.dataset.url, {
          method: "POST", body, headers: { "X-CSRF-Token": zone.dataset.csrf },
        });
        if (!response.ok) {
          const answer = await response.json().catch(() => ({}));
          reason = (answer.error && answer.error.message) || answer.error || `HTTP ${response.status}`;
        }
      } catch (error) {
        reason = String(error);
      }
      done += 1;
      if (reason) {
        refused += 1;
        const item = document.createElement("li");
        const name = file.webkitRelativePath || file.name;
        item.textContent = String(reason).startsWith(name) ? reason : `${name}: ${reason}`;
        rejected.appendChild(item);
      } else {
        stored += 1;
      }
      show();
    };
    show();
    const worker = async () => { while (next < images.length) await one(images[next++]); };
    await Promise.all([worker(), worker()]);
    if (stored) zone.querySelector("#upload-show").hidden = false;
    if (stored && !refused) window.location.reload();
    else if (stored && window.htmx && document.getElementById("version-counts")) {
      // the refusals stay on screen; the counts above them follow what was stored
      window.htmx.ajax("GET", window.location.href,
        { target: "#version-counts", select: "#version-counts", swap: "outerHTML" });
    }
  }
  function uploads() {
    const zone = document.getElementById("upload");
    if (!zone) return;
    for (const input of zone.querySelectorAll("input[type=file]")) {
      input.addEventListener("change", () => upload(zone, Array.from(input.files)));
    }
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      upload(zone, await filesOfDrop(Array.from(event.dataTransfer.items)));
    });
    zone.querySelector("#upload-show").addEventListener("click", () => window.location.reload());
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", uploads);
  else uploads();

  // Running times tick in the page while runs run (the server's figure, then the clock's).
  function human(seconds) {
    if (seconds < 120) return `${seconds.toFixed(1)} s`;
    if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  function tick() {
    for (const el of document.querySelectorAll(".running-time[data-started]:not([data-finished])")) {
      const started = Date.parse(el.dataset.started);
      if (!Number.isNaN(started)) el.textContent = human(Math.max(0, Date.now() - started) / 1000);
    }
  }
  setInterval(tick, 1000);

  // A run's state as the job page shows it: the header badge, its row in the runs table.
  function showRun(run) {
    const setBadge = (el) => {
      el.textContent = run.status;
      el.className = el.className.replace(/\b(pending|running|succeeded|failed|cancelled)\b/g, "").trim()
        + ` ${run.status}`;
    };
    const header = document.getElementById("job-status");
    if (header && header.dataset.run === String(run.id)) setBadge(header);
    const why = document.getElementById("pending-why");  // it no longer waits
    if (why && run.status !== "pending") why.remove();
    const row = document.querySelector(`tr[data-run="${run.id}"]`);
    if (!row) return;
    const badge = row.querySelector(".run-status");
    if (badge) setBadge(badge);
    const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : "");
    const started = row.querySelector(".run-started");
    if (started) started.textContent = time(run.started_at);
    const finished = row.querySelector(".run-finished");
    if (finished) finished.textContent = time(run.finished_at);
    for (const el of document.querySelectorAll(`tr[data-run="${run.id}"] .running-time, #progress .running-time`)) {
      if (run.started_at) el.dataset.started = run.started_at;
    }
    tick();
  }

  // The live log: lines over SSE, auto-scroll unless the reader scrolled up; after a reconnect
  // the browser resumes from the last event id; at the end, reload to show the final state.
  function followLog() {
    const log = document.getElementById("log");
    if (!log || log.dataset.live !== "yes") return;
    let follow = true;
    log.addEventListener("scroll", () => {
      follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    });
    log.scrollTop = log.scrollHeight;
    const source = new EventSource(`/ui/runs/${log.dataset.run}/events?after=${log.dataset.after}`);
    source.addEventListener("log", (event) => {
      const line = JSON.parse(event.data);
      const span = document.createElement("span");
      const level = { WARNING: "warning", ERROR: "error", CRITICAL: "error", DEBUG: "debug" }[
        line.text.split(" ", 1)[0]];
      span.className = level ? `${line.stream} level-${level}` : line.stream;
      span.textContent = line.text + "\n";
      log.appendChild(span);
      if (follow) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("run", (event) => showRun(JSON.parse(event.data)));
    source.addEventListener("end", () => {
      source.close();
      // the final state, without the launch's notice ("its first run is queued…")
      const url = new URL(window.location.href);
      url.searchParams.delete("notice");
      window.location.replace(url.toString());
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", followLog);
  } else {
    followLog();
  }
})();
