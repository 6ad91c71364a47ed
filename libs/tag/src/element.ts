// What the tag records of a click: the nearest button or link around the click target,
// described by tag, id, a few classes, a short label and (links) the filtered href.
// Privacy invariant: never an input's value, never text typed anywhere (form fields,
// contenteditable), never markup; the label comes from aria-label/title or the visible
// text of a button or link that contains no form field.
import type { UrlFilter } from './url-filter.js';
import { REDACTED } from './scrub-params.js';

/** The subset of the DOM Element API the tag reads (a real Element satisfies it). */
export interface ElementLike {
  tagName: string;
  id: string;
  classList: ArrayLike<string>;
  textContent: string | null;
  isContentEditable?: boolean;
  href?: unknown;
  getAttribute(name: string): string | null;
  closest(selector: string): ElementLike | null;
  querySelector(selector: string): unknown;
}

export interface ElementInfo {
  tag: string;
  id: string | null;
  classes: string[];
  label: string | null;
  href: string | null;
}

export interface ClickInfo {
  /** `link` for <a href>, `click` for buttons */
  type: 'click' | 'link';
  element: ElementInfo;
}

export const LABEL_CHARS = 100;
const MAX_CLASSES = 5;
const CLASS_CHARS = 64;

const CLICKABLE =
  'a[href],button,[role="button"],[role="link"],input[type="button"],input[type="submit"],input[type="reset"],input[type="image"]';
const FIELDS = 'input,textarea,select,[contenteditable]:not([contenteditable="false"])';
/** An element (and everything inside it) the site asked the tag not to record. */
export const IGNORE = '[data-tl-ignore]';

export function describeClick(target: unknown, filterUrl: UrlFilter): ClickInfo | null {
  if (!target || typeof (target as ElementLike).closest !== 'function') return null;
  const el = (target as ElementLike).closest(CLICKABLE);
  if (!el || el.closest(IGNORE)) return null;
  const tag = el.tagName.toLowerCase();
  const rawHref = tag === 'a' && typeof el.href === 'string' ? el.href : null;
  return {
    type: tag === 'a' ? 'link' : 'click',
    element: {
      tag,
      id: el.id ? cut(el.id, LABEL_CHARS) : null,
      classes: classesOf(el),
      label: labelOf(el, tag),
      href: rawHref ? filterUrl(rawHref) : null,
    },
  };
}

function classesOf(el: ElementLike): string[] {
  const out: string[] = [];
  for (let i = 0; i < el.classList.length && out.length < MAX_CLASSES; i++) {
    const c = el.classList[i];
    if (c) out.push(cut(c, CLASS_CHARS));
  }
  return out;
}

function labelOf(el: ElementLike, tag: string): string | null {
  const named = el.getAttribute('aria-label') || el.getAttribute('title');
  if (named) return clean(named);
  // NOTE: an <input type=submit>'s caption is its value: inputs' values are never read.
  if (tag === 'input' || el.isContentEditable || el.querySelector(FIELDS)) return null;
  return clean(el.textContent ?? '');
}

/** Whitespace collapsed, trimmed, any word with an @ redacted, at most LABEL_CHARS. */
export function clean(s: string): string | null {
  // NOTE: bounded before the regexes (a "link" may wrap a whole card of text). Whole words
  // holding an @ are redacted, not just full emails: a cut may leave half an address.
  const t = s
    .slice(0, LABEL_CHARS * 20)
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, LABEL_CHARS * 2)
    .replace(/\S*(?:@|%40)\S*/g, REDACTED);
  return t ? cut(t, LABEL_CHARS) : null;
}

/** At most `max` UTF-16 units, never ending in half a surrogate pair. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
