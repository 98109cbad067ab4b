// The demo's small scripts: the expiry countdown, what document.cookie shows, and the
// parallel requests of the "two tabs" panel. The page works without them.
"use strict";

function countdown(element) {
  const end = Date.now() + Number(element.dataset.seconds) * 1000;
  function tick() {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    element.textContent = `${minutes}:${seconds}`;
    element.setAttribute("datetime", `PT${left}S`);
    if (left === 0) {
      element.textContent = "0:00 (expired: reload to start a new session)";
      return;
    }
    setTimeout(tick, 1000);
  }
  tick();
}

async function counts(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response.json();
}

async function race(button) {
  const slots = Number(button.dataset.slots);
  const url = button.dataset.url;
  const result = document.getElementById("race-result");
  const table = document.getElementById("race-table");
  button.disabled = true;
  result.textContent = `Sending ${slots} requests…`;
  try {
    const before = await counts(url);
    const requests = [];
    for (let slot = 0; slot < slots; slot++) {
      requests.push(
        fetch(`${url}/${slot}`, { method: "POST" }).then((response) => {
          if (!response.ok) throw new Error(`POST ${url}/${slot}: ${response.status}`);
          return response.json();
        }),
      );
    }
    const answers = await Promise.all(requests);
    const after = await counts(url);
    const body = table.tBodies[0];
    body.replaceChildren();
    let landed = 0;
    for (const answer of answers) {
      const key = `race_${answer.slot}`;
      if (after[key] === before[key] + 1) landed++;
      const row = body.insertRow();
      for (const text of [key, before[key], after[key],
        `${((answer.end - answer.start) * 1000).toFixed(0)} ms`]) {
        const cell = row.insertCell();
        cell.textContent = String(text);
      }
      row.cells[0].classList.add("mono");
    }
    const overlap = Math.max(...answers.map((a) => a.start)) < Math.min(...answers.map((a) => a.end));
    table.hidden = false;
    result.textContent =
      `${landed} of ${slots} increments landed` +
      (overlap ? `, with all ${slots} requests in flight at the same time.` : ".");
    result.className = landed === slots ? "flash flash-success" : "flash flash-error";
  } catch (error) {
    result.textContent = `The requests failed: ${error.message}`;
    result.className = "flash flash-error";
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const expiry = document.getElementById("expiry");
  if (expiry) countdown(expiry);
  const cookie = document.getElementById("document-cookie");
  if (cookie) cookie.textContent = `document.cookie = ${JSON.stringify(document.cookie)}`;
  const button = document.getElementById("race");
  if (button) {
    button.hidden = false;
    button.addEventListener("click", () => race(button));
  }
});
