/* Small DOM helpers: writes that touch the document only when a value changed. */

export const $ = (sel, root = document) => root.querySelector(sel);

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
