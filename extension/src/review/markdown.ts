/**
 * Renders a comment's body. The server sends `html` already sanitized (Markdown rendered
 * with raw HTML off, then nh3); it is someone else's text, so it is sanitized again here
 * with JupyterLab's Sanitizer and a narrow allow-list before it touches the page, parsed
 * in an inert <template> (no script runs, no image loads), and its links and images are
 * checked once more.
 */
import { Sanitizer } from '@jupyterlab/apputils';
import type { IRenderMime } from '@jupyterlab/rendermime';

import type { IComment } from '../reviewClient';

/** What rendered Markdown may contain: no forms, media, frames, styles or ids. */
const ALLOWED_TAGS = [
  'a',
  'b',
  'blockquote',
  'br',
  'code',
  'del',
  'em',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'hr',
  'i',
  'img',
  'li',
  'ol',
  'p',
  'pre',
  's',
  'span',
  'strong',
  'table',
  'tbody',
  'td',
  'th',
  'thead',
  'tr',
  'ul'
];

const ALLOWED_ATTRIBUTES: Record<string, string[]> = {
  a: ['href', 'title'],
  img: ['src', 'alt', 'title'],
  ol: ['start'],
  span: ['class'],
  td: ['style'],
  th: ['style']
};

/** Table cells keep their alignment, nothing else of a style. */
const ALIGN = { 'text-align': [/^(left|right|center)$/] };
const ALLOWED_STYLES = { td: ALIGN, th: ALIGN };

/** The only class kept: the server marks @mentions of known users with it. */
const MENTION_CLASS = 'cellops-mention';

const LINK_SCHEMES = new Set(['http:', 'https:', 'mailto:']);
const ABSOLUTE_IMAGE = /^https?:\/\/[^/\\]/i;
const DATA_IMAGE = /^data:image\/(png|jpeg|gif);base64,[a-z0-9+/=\s]*$/i;

let shared: IRenderMime.ISanitizer | null = null;

/** One sanitizer for all comments (it holds only configuration). */
function defaultSanitizer(): IRenderMime.ISanitizer {
  shared ??= new Sanitizer();
  return shared;
}

/**
 * The scheme of `url` as the browser would resolve it (relative URLs take the page's),
 * or null if it cannot be parsed.
 */
function schemeOf(url: string): string | null {
  try {
    return new URL(url, document.baseURI).protocol;
  } catch {
    return null;
  }
}

/** Links open in a new tab without access to this page; others lose their href. */
function fixLinks(root: DocumentFragment): void {
  root.querySelectorAll('a').forEach(link => {
    const href = link.getAttribute('href');
    const scheme = href === null ? null : schemeOf(href);
    if (href === null || scheme === null || !LINK_SCHEMES.has(scheme)) {
      link.removeAttribute('href');
      return;
    }
    link.target = '_blank';
    link.rel = 'noopener noreferrer nofollow';
  });
}

/**
 * Images only from absolute http(s) URLs or inline PNG/JPEG/GIF; others become their alt
 * text. Not relative ones: they would load this Jupyter server's URLs with the reader's
 * cookies (e.g. `/logout`) without a click.
 */
function fixImages(root: DocumentFragment): void {
  root.querySelectorAll('img').forEach(img => {
    const src = img.getAttribute('src') ?? '';
    const ok = DATA_IMAGE.test(src) || ABSOLUTE_IMAGE.test(src);
    if (!ok) {
      img.replaceWith(document.createTextNode(img.alt));
      return;
    }
    img.loading = 'lazy';
    img.referrerPolicy = 'no-referrer';
  });
}

/** Sanitized `html` as nodes ready to insert (the fragment is inert until inserted). */
export function sanitizedFragment(
  html: string,
  sanitizer: IRenderMime.ISanitizer = defaultSanitizer()
): DocumentFragment {
  const clean = sanitizer.sanitize(html, {
    allowedTags: ALLOWED_TAGS,
    allowedAttributes: ALLOWED_ATTRIBUTES,
    allowedStyles: ALLOWED_STYLES
  });
  const template = document.createElement('template');
  template.innerHTML = clean;
  const fragment = template.content;
  fixLinks(fragment);
  fixImages(fragment);
  fragment.querySelectorAll('span[class]').forEach(span => {
    const mention = span.classList.contains(MENTION_CLASS);
    span.removeAttribute('class');
    if (mention) {
      span.className = MENTION_CLASS;
    }
  });
  return fragment;
}

/**
 * The body of `comment` (`.cellops-comment-body`): its sanitized HTML, or, from a backend
 * that sends none, its Markdown source as plain text.
 */
export function renderCommentBody(
  comment: IComment,
  sanitizer?: IRenderMime.ISanitizer
): HTMLElement {
  const node = document.createElement('div');
  node.className = 'cellops-comment-body';
  if (typeof comment.html === 'string') {
    node.classList.add('jp-RenderedHTMLCommon');
    node.append(sanitizedFragment(comment.html, sanitizer));
  } else {
    node.classList.add('cellops-mod-plain');
    node.textContent = comment.body;
  }
  return node;
}
