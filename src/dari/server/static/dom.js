// What both pages build their elements and read dari's errors with.

// A small element builder that translates with the page's `t`:
// h("button", {class: "x", i18n: "copy", onclick}, child, ...); children are text or nodes.
export function builder(t) {
  return function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "i18n") { el.dataset.i18n = v; el.textContent = t(v); }
      else if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
    el.append(...children.filter((c) => c !== null && c !== undefined));
    return el;
  };
}

// The message and hint of dari's JSON error body, else the HTTP status.
export async function problem(res) {
  try {
    const { error } = await res.json();
    return [error.message, error.hint].filter(Boolean).join(" — ");
  } catch {
    return `HTTP ${res.status}`;
  }
}
