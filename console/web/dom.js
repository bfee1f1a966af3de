// Small DOM helpers: every page builds its markup with `h`, never with
// innerHTML, so API-provided text can never become markup.

/**
 * Creates an element. `attrs` keys starting with `on` add listeners; `text`,
 * `dataset`, `style` (an object) and `value`/`checked`/`selected` are set as
 * properties; `false`/`null` attributes are left out. Children may be nodes,
 * strings, numbers or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key === 'style' && typeof value === 'object') {
      // Through the CSSOM: allowed by a CSP without 'unsafe-inline' styles.
      Object.assign(el.style, value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (!svg && key in PROPS) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

// Set as properties: attributes would only give the initial value.
const PROPS = { value: true, checked: true, selected: true };

const SVG_TAGS = new Set(['svg', 'g', 'path', 'rect', 'line', 'text', 'title', 'circle', 'polyline']);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let nextId = 0;

/** A document-unique id, for label/aria wiring. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form field: `<div class="field"><label>…</label>control</div>`. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint'), text: hint }) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hintEl);
}

/** A `<select>` of `[value, text]` pairs (or plain values). */
export function select(attrs, options, selected) {
  return h(
    'select',
    attrs,
    options.map((o) => {
      const [value, text] = Array.isArray(o) ? o : [o, o];
      return h('option', { value, selected: value === selected, text });
    }),
  );
}

/** A card: a titled section of a page. */
export function card(title, ...children) {
  const headingId = uid('card');
  return h(
    'section',
    { class: 'card', 'aria-labelledby': headingId },
    h('h2', { id: headingId, text: title }),
    ...children,
  );
}

/** Column headers, then a last one for row buttons, named for screen readers only. */
export function headersWithActions(names) {
  return [
    ...names.map((t) => h('th', { scope: 'col', text: t })),
    h('th', { scope: 'col' }, h('span', { class: 'visually-hidden', text: 'Actions' })),
  ];
}
