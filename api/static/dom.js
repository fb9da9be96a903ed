/* Small DOM helpers: writes that touch the document only when a value changed. */

export const $ = (sel, root = document) => root.querySelector(sel);

/** {key: selector} -> {key: the element}, for a view to keep the elements it writes. */
export function elements(selectors) {
  return Object.fromEntries(Object.entries(selectors).map(([key, sel]) => [key, $(sel)]));
}

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

export function setAttr(node, name, value) {
  const s = String(value);
  if (node.getAttribute(name) !== s) node.setAttribute(name, s);
}

/** A function that appends a cell (`td`) to the row `tr` and returns it. */
export function cellsOf(tr) {
  return (cls, text) => {
    const c = el('td', cls, text);
    tr.append(c);
    return c;
  };
}
