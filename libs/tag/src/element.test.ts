import { describe, expect, it } from 'vitest';
import { clean, describeClick, type ElementLike } from './element.js';
import { createUrlFilter } from './url-filter.js';

/** A tiny element tree: enough of the DOM for describeClick (which only reads these fields). */
interface Spec {
  tag: string;
  id?: string;
  classes?: string[];
  attrs?: Record<string, string>;
  text?: string;
  href?: string;
  editable?: boolean;
  children?: FakeEl[];
}
type FakeEl = ElementLike & { parent: FakeEl | null; children: FakeEl[]; matches(sel: string): boolean };

function el(spec: Spec): FakeEl {
  const children = spec.children ?? [];
  const attrs: Record<string, string> = { ...spec.attrs, ...(spec.href ? { href: spec.href } : {}) };
  const node: FakeEl = {
    tagName: spec.tag.toUpperCase(),
    id: spec.id ?? '',
    classList: spec.classes ?? [],
    textContent: spec.text ?? children.map((c) => c.textContent ?? '').join(''),
    isContentEditable: spec.editable ?? false,
    href: spec.href,
    parent: null,
    children,
    getAttribute: (n) => attrs[n] ?? null,
    // NOTE: a selector "matches" when it names the tag, [role=…] or an attribute in brackets.
    matches(sel) {
      return sel.split(',').some((s) => {
        const m = /^([a-z]*)(?:\[([a-z-]+)(?:="([^"]*)")?\])?/.exec(s.trim());
        if (!m) return false;
        const [, tag, attr, value] = m;
        if (tag && tag !== spec.tag) return false;
        if (!attr) return Boolean(tag);
        if (attr === 'contenteditable') return spec.editable === true;
        return attrs[attr] !== undefined && (value === undefined || attrs[attr] === value);
      });
    },
    closest(sel) {
      for (let n: FakeEl | null = node; n; n = n.parent) if (n.matches(sel)) return n;
      return null;
    },
    querySelector(sel) {
      const walk = (n: FakeEl): FakeEl | null => {
        for (const c of n.children) {
          if (c.matches(sel)) return c;
          const found = walk(c);
          if (found) return found;
        }
        return null;
      };
      return walk(node);
    },
  };
  for (const c of children) c.parent = node;
  return node;
}

const filter = createUrlFilter();

describe('describeClick', () => {
  it('describes a button: tag, id, at most five classes, the trimmed visible text', () => {
    const span = el({ tag: 'span', text: 'now' });
    const button = el({ tag: 'button', id: 'signup', classes: ['a', 'b', 'c', 'd', 'e', 'f'], children: [el({ tag: 'span', text: '\n  Sign   up ' }), span] });
    expect(describeClick(span, filter)).toEqual({
      type: 'click',
      element: { tag: 'button', id: 'signup', classes: ['a', 'b', 'c', 'd', 'e'], label: 'Sign up now', href: null },
    });
  });

  it('describes a link with its filtered href', () => {
    const a = el({ tag: 'a', text: 'Docs', href: 'https://acme.com/docs?email=bob%40x.com&utm_source=tag' });
    expect(describeClick(a, filter)).toEqual({
      type: 'link',
      element: { tag: 'a', id: null, classes: [], label: 'Docs', href: 'https://acme.com/docs?email=redacted&utm_source=tag' },
    });
  });

  it('prefers aria-label, then title', () => {
    expect(describeClick(el({ tag: 'button', text: '×', attrs: { 'aria-label': ' Close  dialog ' } }), filter)?.element.label).toBe('Close dialog');
    expect(describeClick(el({ tag: 'button', text: '×', attrs: { title: 'Close' } }), filter)?.element.label).toBe('Close');
  });

  it('never reads an input: a submit input is tracked without its value', () => {
    const input = el({ tag: 'input', attrs: { type: 'submit', value: 'secret caption' }, text: '' });
    expect(describeClick(input, filter)).toEqual({ type: 'click', element: { tag: 'input', id: null, classes: [], label: null, href: null } });
  });

  it('gives no label to a button holding a form field or inside an editor', () => {
    const withField = el({ tag: 'button', children: [el({ tag: 'textarea', text: 'typed secret' })] });
    expect(describeClick(withField, filter)?.element.label).toBeNull();
    const editable = el({ tag: 'a', href: 'https://acme.com/', text: 'typed secret', editable: true });
    expect(describeClick(editable, filter)?.element.label).toBeNull();
  });

  it('ignores plain elements, form fields and anything under [data-tl-ignore]', () => {
    expect(describeClick(el({ tag: 'div', text: 'hi' }), filter)).toBeNull();
    expect(describeClick(el({ tag: 'input', attrs: { type: 'text' } }), filter)).toBeNull();
    const button = el({ tag: 'button', text: 'x' });
    el({ tag: 'div', attrs: { 'data-tl-ignore': '' }, children: [button] });
    expect(describeClick(button, filter)).toBeNull();
    expect(describeClick(null, filter)).toBeNull();
    expect(describeClick({ nodeType: 3 }, filter)).toBeNull();
  });

  it('redacts emails in labels and hrefs of mailto links', () => {
    const a = el({ tag: 'a', href: 'mailto:alice@example.com', text: 'Write to alice@example.com' });
    expect(describeClick(a, filter)?.element).toMatchObject({ label: 'Write to redacted', href: 'mailto:redacted' });
  });
});

describe('clean', () => {
  it.each([
    ['collapses whitespace and trims', '  a \n\t b  ', 'a b'],
    ['empty → null', ' \n ', null],
    ['cut at 100', 'x'.repeat(300), 'x'.repeat(100)],
    ['never half a surrogate pair', `${'x'.repeat(99)}😀`, 'x'.repeat(99)],
    ['any word with @ is redacted', 'Ask @bob or bob%40example.com', 'Ask redacted or redacted'],
    ['redaction happens before the cut', `${'w '.repeat(48)}bob@example.com tail`, `${'w '.repeat(48)}reda`],
  ])('%s', (_name, input, expected) => {
    expect(clean(input)).toBe(expected);
  });
});
