// Chat page: send, stream (newline-delimited JSON of server-sanitised HTML), stop, regenerate, copy,
// citations, conversation rename/delete and the consent switch. UI text comes from the page (#chat-text).
"use strict";
(function () {
  const text = JSON.parse(document.getElementById("chat-text").textContent);
  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const list = document.getElementById("messages");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const errorBox = document.getElementById("chat-error");
  const csrf = form.querySelector("input[name=csrf_token]").value;
  const citationsOf = new WeakMap();
  let conversationId = form.dataset.conversation || null;
  let running = null;

  const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
  const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf };

  async function api(method, url, body) {
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }

  async function errorMessage(response) {
    try { return (await response.json()).error.message; } catch (e) { return response.status + " " + response.statusText; }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function choices() {
    return {
      model: form.querySelector("#model").value,
      collections: Array.from(form.querySelectorAll("input[name=collections]:checked")).map((box) => box.value),
    };
  }

  function element(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function userMessage(content) {
    const item = element("li", "message user");
    item.append(element("div", "author", text.you));
    const body = element("div", "body plain", content);
    body.dir = "auto";
    item.append(body);
    list.append(item);
    return item;
  }

  function assistantMessage() {
    const item = element("li", "message assistant streaming");
    item.append(element("div", "author", text.assistant));
    const body = element("div", "body markdown");
    body.dir = "auto";
    item.append(body);
    list.append(item);
    return item;
  }

  function pages(citation) {
    const where = citation.location || {};
    if (!where.page) return "";
    if (where.page_end && where.page_end !== where.page) return fill(text.pages, { start: where.page, end: where.page_end });
    return fill(text.page, { page: where.page });
  }

  function finishMessage(item, message, stopped) {
    item.classList.remove("streaming");
    if (message) {
      item.dataset.id = message.id;
      item.querySelector(".body").innerHTML = message.html; // sanitised on the server (render_answer)
    }
    if (stopped) {
      item.classList.add("stopped");
      item.append(element("p", "small muted", text.stopped));
    }
    const citations = (message && message.citations) || [];
    if (citations.length) {
      citationsOf.set(item, citations);
      const sources = element("div", "sources");
      sources.append(element("span", "small muted", text.sources + ":"));
      for (const citation of citations) {
        const where = pages(citation);
        const button = element("button", "source" + (citation.cited ? " cited" : ""),
          "[" + citation.index + "] " + citation.document_name + (where ? " · " + where : ""));
        button.type = "button";
        button.dir = "auto";
        button.dataset.cite = citation.index;
        sources.append(button);
      }
      item.append(sources);
    }
    // Only the newest answer can be regenerated (the server replaces the last one).
    list.querySelectorAll(".regenerate").forEach((button) => button.remove());
    const actions = element("div", "message-actions");
    const copy = element("button", "copy", text.copy);
    copy.type = "button";
    copy.dataset.raw = message ? message.content : item.querySelector(".body").textContent;
    const regenerate = element("button", "regenerate", text.regenerate);
    regenerate.type = "button";
    actions.append(copy, regenerate);
    item.append(actions);
  }

  function setRunning(controller) {
    running = controller;
    sendButton.disabled = !!controller;
    stopButton.hidden = !controller;
    list.querySelectorAll(".regenerate").forEach((button) => { button.disabled = !!controller; });
    if (controller) stopButton.focus(); else prompt.focus();
  }

  async function ensureConversation() {
    if (conversationId) return conversationId;
    const created = await api("POST", "/ui/api/conversations", choices());
    conversationId = String(created.id);
    form.dataset.conversation = conversationId;
    history.replaceState(null, "", "/chat/" + conversationId);
    return conversationId;
  }

  async function regenerate(item) {
    // The old answer stays on the page (and stored) until the new one has started.
    item.hidden = true;
    const ok = await turn(null);
    if (ok) item.remove(); else item.hidden = false;
  }

  async function turn(content) {
    showError("");
    const controller = new AbortController();
    setRunning(controller);
    let item = null;
    let done = false;
    let started = false;
    try {
      const id = await ensureConversation();
      if (content !== null) userMessage(content);
      item = assistantMessage();
      item.scrollIntoView({ block: "end" });
      const response = await fetch("/ui/api/conversations/" + id + "/turns", {
        method: "POST", headers, signal: controller.signal,
        body: JSON.stringify(Object.assign({ content }, choices())),
      });
      if (!response.ok) throw new Error(await errorMessage(response));
      started = true;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const event = JSON.parse(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
          if (event.type === "delta") {
            item.querySelector(".body").innerHTML = event.html; // sanitised on the server
          } else if (event.type === "done") {
            done = true;
            finishMessage(item, event.message, false);
            if (event.conversation) listConversation(event.conversation);
            if (event.error) showError(text.failed + " " + event.error);
          }
        }
      }
      if (!done) throw new Error(text.network);
    } catch (error) {
      if (error.name === "AbortError") {
        if (item) finishMessage(item, null, true);
      } else {
        if (item && !done) item.remove();
        showError(error.message);
      }
    } finally {
      setRunning(null);
    }
    return started;
  }

  function listConversation(conversation) {
    // A new conversation appears at the top of the list on the side, as the server would render it.
    const conversations = document.getElementById("conversation-list");
    if (conversations.querySelector('li[data-id="' + conversation.id + '"]')) return;
    const empty = conversations.querySelector("li.empty");
    if (empty) empty.remove();
    conversations.querySelectorAll("li.current").forEach((li) => li.classList.remove("current"));
    conversations.querySelectorAll("a[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    const item = element("li", "current");
    item.dataset.id = conversation.id;
    const link = element("a", "", conversation.title || text.untitled);
    link.href = "/chat/" + conversation.id;
    link.dir = "auto";
    link.setAttribute("aria-current", "page");
    const actions = element("span", "item-actions");
    for (const [kind, label] of [["rename", text.rename], ["delete", text.delete]]) {
      const button = element("button", "icon " + kind, label);
      button.type = "button";
      button.dataset.id = conversation.id;
      if (kind === "rename") button.dataset.title = conversation.title;
      actions.append(button);
    }
    item.append(link, actions);
    conversations.prepend(item);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = prompt.value.trim();
    if (!content || running) return;
    prompt.value = "";
    turn(content);
  });
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stopButton.addEventListener("click", () => { if (running) running.abort(); });

  // Citations, copy and regenerate, for stored and streamed messages alike.
  const dialog = document.getElementById("citation-dialog");
  function openCitation(item, number) {
    let citations = citationsOf.get(item);
    if (!citations) {
      const data = item.querySelector(".citations-data");
      citations = data ? JSON.parse(data.textContent) : [];
      citationsOf.set(item, citations);
    }
    const citation = citations.find((c) => String(c.index) === String(number));
    if (!citation) return;
    document.getElementById("citation-title").textContent = "[" + citation.index + "] " + citation.document_name;
    document.getElementById("citation-where").textContent = [citation.collection, pages(citation)].filter(Boolean).join(" · ");
    document.getElementById("citation-quote").textContent = citation.quote;
    document.getElementById("citation-file").href = "/ui/files/" + citation.document_id;
    dialog.showModal();
  }
  document.getElementById("citation-close").addEventListener("click", () => dialog.close());

  list.addEventListener("click", async (event) => {
    const target = event.target.closest("a.cite, button.source, button.copy, button.regenerate");
    if (!target) return;
    const item = target.closest("li.message");
    if (target.matches("a.cite, button.source")) {
      event.preventDefault();
      openCitation(item, target.dataset.cite);
    } else if (target.matches("button.copy")) {
      await navigator.clipboard.writeText(target.dataset.raw);
      target.textContent = text.copied;
      setTimeout(() => { target.textContent = text.copy; }, 1500);
    } else if (target.matches("button.regenerate") && !running) {
      regenerate(item);
    }
  });

  // Conversations on the side: rename and delete.
  document.getElementById("conversation-list").addEventListener("click", async (event) => {
    const button = event.target.closest("button.rename, button.delete");
    if (!button) return;
    const id = button.dataset.id;
    try {
      if (button.classList.contains("rename")) {
        const title = window.prompt(text.rename_prompt, button.dataset.title || "");
        if (!title || !title.trim()) return;
        const renamed = await api("PATCH", "/ui/api/conversations/" + id, { title: title.trim() });
        button.dataset.title = renamed.title;
        button.closest("li").querySelector("a").textContent = renamed.title;
      } else if (window.confirm(text.delete_confirm)) {
        await api("DELETE", "/ui/api/conversations/" + id);
        if (id === conversationId) window.location.assign("/chat");
        else button.closest("li").remove();
      }
    } catch (error) {
      showError(error.message);
    }
  });

  const consentToggle = document.getElementById("consent-toggle");
  if (consentToggle) {
    consentToggle.addEventListener("click", async () => {
      const granted = document.getElementById("consent").dataset.granted !== "true";
      try {
        await api("POST", "/ui/api/consent", { granted });
        window.location.reload();
      } catch (error) {
        showError(error.message);
      }
    });
  }
})();
