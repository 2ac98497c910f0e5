// Person search page: no external resources; every value is set as text, never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "veracity.token";
  const PKCE_KEY = "veracity.pkce";
  let lastPurpose = "";
  let config = { sign_in: "token" };

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function show(section) {
    for (const id of ["signin", "search-section", "person"]) { $(id).hidden = id !== section; }
  }

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value == null ? "" : String(value);
    if (cls) { el.className = cls; }
    return el;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      show("signin");
      throw new Error("Your session has ended: sign in again.");
    }
    if (!response.ok) { throw new Error(body.detail || body.error || ("request failed: " + response.status)); }
    return body;
  }

  function renderResults(results) {
    const list = $("results");
    list.replaceChildren();
    $("message").textContent = results.length ? "" : "No one found. Check the spelling, or give a date of birth or postcode.";
    for (const r of results) {
      const item = document.createElement("li");
      item.className = "result";
      item.append(text("span", (r.score * 100).toFixed(1) + "%", "score"));
      const title = document.createElement("h3");
      const link = text("a", r.name || r.person_id);
      link.href = "#person/" + encodeURIComponent(r.person_id);
      link.dataset.personId = r.person_id;
      title.append(link);
      item.append(title);
      item.append(text("div", [r.date_of_birth || "DOB not held", r.postcode || "", r.person_id].filter(Boolean).join(" · "), "muted"));
      item.append(text("div", "Held by: " + r.sources.join(", "), "muted"));
      const why = document.createElement("ul");
      why.className = "why";
      for (const line of r.why) { why.append(text("li", line)); }
      item.append(why);
      list.append(item);
    }
  }

  function fill(list, rows, describe) {
    const el = $(list);
    el.replaceChildren();
    if (!rows.length) { el.append(text("li", "None recorded", "muted")); }
    for (const row of rows) { el.append(text("li", describe(row))); }
  }

  function renderPerson(data) {
    const p = data.person;
    $("person-name").textContent = [p.first_name, p.last_name].filter(Boolean).join(" ") || p.person_id;
    $("person-id").textContent = p.person_id + " · " + p.record_count + " records · snapshot " + data.snapshot;
    $("withheld").hidden = !data.withheld.length;
    $("withheld").textContent = data.withheld.length ? "Withheld (not cleared): " + data.withheld.join(", ") : "";
    const golden = $("golden");
    golden.replaceChildren();
    for (const field of ["date_of_birth", "sex", "address", "town", "postcode", "phone", "email", "pnc_id", "cro_number",
                         "ni_number", "driving_licence", "source_systems", "first_seen", "last_seen"]) {
      if (p[field] == null || p[field] === "") { continue; }
      golden.append(text("dt", field.replace(/_/g, " ")), text("dd", field === "source_systems" ? p[field].split(";").join(", ") : p[field]));
    }
    const columns = ["source_system", "source_record_id", "first_name", "last_name", "date_of_birth", "postcode", "match_probability"];
    const head = document.createElement("tr");
    for (const c of columns) { head.append(text("th", c.replace(/_/g, " "))); }
    $("records").tHead.replaceChildren(head);
    const body = $("records").tBodies[0];
    body.replaceChildren();
    for (const r of data.records) {
      const tr = document.createElement("tr");
      for (const c of columns) { tr.append(text("td", c === "match_probability" ? Number(r[c]).toFixed(3) : r[c])); }
      body.append(tr);
    }
    fill("aliases", data.aliases, (a) => [a.first_name, a.last_name].filter(Boolean).join(" ") + " (" + a.kind + ", " + a.records + " records)");
    fill("addresses", data.addresses, (a) => [a.address, a.town, a.postcode].filter(Boolean).join(", ") + " (" + a.records + " records)");
    fill("associations", data.associations, (a) => a.person_id + ": " + a.events_together + " events together (" + a.event_kinds + ")");
    show("person");
  }

  async function openPerson(personId) {
    $("message").textContent = "";
    try {
      renderPerson(await api("/api/persons/" + encodeURIComponent(personId) + "?" + new URLSearchParams({ purpose: lastPurpose })));
    } catch (err) { $("message").textContent = err.message; show("search-section"); }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    show("search-section");
  });

  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    if (config.sign_in === "cognito") {
      location.assign(config.authority + "/logout?" + new URLSearchParams({ client_id: config.client_id, logout_uri: config.redirect_uri }));
    } else { show("signin"); }
  });

  // Cognito's managed login: the authorization code flow with PKCE (RFC 7636).
  function base64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function startSignIn() {
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
    location.assign(config.authority + "/oauth2/authorize?" + new URLSearchParams({
      response_type: "code", client_id: config.client_id, redirect_uri: config.redirect_uri, scope: "openid",
      code_challenge: challenge, code_challenge_method: "S256", state,
    }));
  }

  async function finishSignIn(params) {
    const pending = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", location.pathname);
    if (!pending || params.get("state") !== pending.state) { throw new Error("Sign-in did not complete: try again."); }
    const response = await fetch(config.authority + "/oauth2/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", client_id: config.client_id, code: params.get("code"),
        redirect_uri: config.redirect_uri, code_verifier: pending.verifier,
      }),
    });
    if (!response.ok) { throw new Error("Sign-in was refused: try again."); }
    sessionStorage.setItem(TOKEN_KEY, (await response.json()).access_token);
  }

  $("cognito-sign-in").addEventListener("click", () => { startSignIn(); });

  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(event.target)) { if (value.trim()) { params.set(name, value.trim()); } }
    lastPurpose = params.get("purpose") || "";
    if (!lastPurpose) { $("message").textContent = "Give the purpose: the incident or investigation reference."; return; }
    $("message").textContent = "Searching…";
    try { renderResults((await api("/api/persons/search?" + params)).results); }
    catch (err) { $("results").replaceChildren(); $("message").textContent = err.message; }
  });

  $("results").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-person-id]");
    if (link) { event.preventDefault(); openPerson(link.dataset.personId); }
  });

  $("back").addEventListener("click", () => show("search-section"));

  async function start() {
    const response = await fetch("config.json").catch(() => null);
    if (response && response.ok) { config = await response.json(); }
    $("cognito-sign-in").hidden = config.sign_in !== "cognito";
    $("token-form").hidden = config.sign_in === "cognito";
    const query = new URLSearchParams(location.search);
    if (config.sign_in === "cognito" && query.get("code")) {
      try { await finishSignIn(query); } catch (err) { $("signin-message").textContent = err.message; }
    }
    // A token handed over in the address (veracity token prints one) is kept for the session, then removed from view.
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (config.sign_in === "token" && fragment.get("token")) {
      sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
      history.replaceState(null, "", location.pathname);
    }
    show(token() ? "search-section" : "signin");
  }

  start();
})();
