// A small, safe Markdown renderer for the chat page (no HTML is ever parsed: every piece of the source ends
// up in a text node, so a model's output cannot inject markup or script).
//
//   LlmMarkdown.render(src, leaf) -> DocumentFragment
//
// Blocks: fenced code (``` or ~~~, an unclosed fence runs to the end: a streaming answer), ATX headings,
// horizontal rules, block quotes, bullet and numbered lists, paragraphs (line breaks kept). Inline: `code`,
// **bold**, *italic* / _italic_, [links](https://...) (http and https only, opened in a new tab).
//
// Text is never copied into the DOM by the renderer itself: it calls leaf(parent, start, end) for every
// stretch of source text that is displayed as-is, so the caller can split it into per-token spans (the page
// shows each token's probability) -- the reason this renderer keeps source offsets instead of producing a string.
"use strict";

(function () {
  function el(tag, cls) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  }

  const FENCE = /^ {0,3}(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*$/;
  const HEADING = /^ {0,3}(#{1,6})[ \t]+/;
  const RULE = /^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/;
  const QUOTE = /^ {0,3}> ?/;
  const ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+/;
  const LINK = /^\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/;

  function render(src, leaf) {
    const frag = document.createDocumentFragment();
    const lines = []; // [start, end) of every line, end before its "\n"
    for (let i = 0; ; ) {
      let j = src.indexOf("\n", i);
      if (j < 0) j = src.length;
      lines.push([i, j]);
      if (j >= src.length) break;
      i = j + 1;
    }
    const text = (k) => src.slice(lines[k][0], lines[k][1]);
    const blank = (k) => /^[ \t]*$/.test(text(k));
    const startsBlock = (k) => FENCE.test(text(k)) || HEADING.test(text(k)) || RULE.test(text(k)) ||
      QUOTE.test(text(k)) || ITEM.test(text(k));

    function inline(parent, a, b) {
      let i = a, from = a;
      const flush = (end) => { if (end > from) leaf(parent, from, end); };
      while (i < b) {
        const c = src[i];
        if (c === "`") {
          const j = src.indexOf("`", i + 1);
          if (j > i + 1 && j < b) {
            flush(i);
            const code = el("code");
            leaf(code, i + 1, j);
            parent.append(code);
            i = from = j + 1;
            continue;
          }
        } else if (c === "*" && src[i + 1] === "*") {
          const j = src.indexOf("**", i + 2);
          if (j > i + 2 && j + 2 <= b) {
            flush(i);
            const strong = el("strong");
            inline(strong, i + 2, j);
            parent.append(strong);
            i = from = j + 2;
            continue;
          }
        } else if ((c === "*" || c === "_") && src[i + 1] !== c && !/\s/.test(src[i + 1] || " ") &&
                   !(c === "_" && i > a && /\w/.test(src[i - 1]))) {
          const j = src.indexOf(c, i + 1);
          if (j > i + 1 && j < b && !/\s/.test(src[j - 1]) && !(c === "_" && /\w/.test(src[j + 1] || ""))) {
            flush(i);
            const em = el("em");
            inline(em, i + 1, j);
            parent.append(em);
            i = from = j + 1;
            continue;
          }
        } else if (c === "[") {
          const m = LINK.exec(src.slice(i, b));
          if (m) {
            flush(i);
            const link = el("a");
            link.href = m[2];
            link.rel = "noopener noreferrer nofollow";
            link.target = "_blank";
            inline(link, i + 1, i + 1 + m[1].length);
            parent.append(link);
            i = from = i + m[0].length;
            continue;
          }
        }
        i++;
      }
      flush(b);
    }

    function lines_into(parent, ks, strip) {
      // Several source lines into one element, a <br> between them; strip(k) = chars to skip at the start.
      ks.forEach((k, n) => {
        if (n) parent.append(el("br"));
        inline(parent, lines[k][0] + strip(k), lines[k][1]);
      });
    }

    let k = 0;
    while (k < lines.length) {
      if (blank(k)) { k++; continue; }
      const line = text(k);
      let m;
      if ((m = FENCE.exec(line))) {
        const fence = m[1];
        let e = k + 1;
        while (e < lines.length && !text(e).trimStart().startsWith(fence)) e++;
        const pre = el("pre");
        if (m[2]) {
          const lang = el("span", "code-lang");
          lang.textContent = m[2];
          pre.append(lang);
        }
        const code = el("code");
        if (m[2]) code.className = "language-" + m[2];
        if (e > k + 1) leaf(code, lines[k + 1][0], lines[e - 1][1]);
        pre.append(code);
        frag.append(pre);
        k = e + 1;
      } else if ((m = HEADING.exec(line))) {
        const h = el("h" + m[1].length);
        inline(h, lines[k][0] + m[0].length, lines[k][1]);
        frag.append(h);
        k++;
      } else if (RULE.test(line)) {
        frag.append(el("hr"));
        k++;
      } else if (QUOTE.test(line)) {
        const ks = [];
        while (k < lines.length && QUOTE.test(text(k))) ks.push(k++);
        const q = el("blockquote");
        lines_into(q, ks, (j) => QUOTE.exec(text(j))[0].length);
        frag.append(q);
      } else if ((m = ITEM.exec(line))) {
        const ordered = /\d/.test(m[2]);
        const list = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(m[2], 10) !== 1) list.start = parseInt(m[2], 10);
        while (k < lines.length && !blank(k)) {
          const im = ITEM.exec(text(k));
          if (!im || /\d/.test(im[2]) !== ordered) break;
          const ks = [k++];
          while (k < lines.length && !blank(k) && !startsBlock(k)) ks.push(k++);  // continuation lines
          const li = el("li");
          lines_into(li, ks, (j) => (j === ks[0] ? im[0].length : (/^[ \t]*/.exec(text(j))[0].length)));
          list.append(li);
        }
        frag.append(list);
      } else {
        const ks = [];
        while (k < lines.length && !blank(k) && (ks.length === 0 || !startsBlock(k))) ks.push(k++);
        const p = el("p");
        lines_into(p, ks, () => 0);
        frag.append(p);
      }
    }
    return frag;
  }

  window.LlmMarkdown = { render };
})();
