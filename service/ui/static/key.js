// The API key box in the page header: kept in sessionStorage (this tab only), sent as `Authorization: Bearer`.

import { apiKey, setApiKey } from "./api.js";

/** Wire the header's key form; onChange runs after a new key is set (a page reloads what it shows). */
export function keyBox(onChange = () => {}) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const show = () => {
    state.textContent = apiKey() ? "key set for this tab" : "";
  };
  input.value = apiKey();
  show();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    show();
    onChange();
  });
}
