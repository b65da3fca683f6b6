/**
 * A small, strict XML reader and Canonical XML 1.1 (inclusive, without comments) serialiser,
 * just enough to check the enveloped XML signature of an NVIDIA RIM (SWID tag).
 *
 * Fail-closed subset: no DOCTYPE (so no entities or DTD defaults), no CDATA, no processing
 * instructions other than a leading XML declaration, no xml:* attributes (whose C14N 1.1
 * inheritance rules we do not implement). Comments are accepted and dropped, as C14N does.
 */

export interface XmlAttribute {
  /** Qualified name as written. */
  name: string;
  prefix?: string;
  local: string;
  /** Resolved namespace URI ("" when unqualified). */
  uri: string;
  value: string;
}

export interface XmlElement {
  type: "element";
  name: string;
  prefix?: string;
  local: string;
  uri: string;
  attributes: XmlAttribute[];
  /** Namespace declarations made on this element: prefix ("" = default) -> URI. */
  declarations: Map<string, string>;
  /** All namespaces in scope here (inherited plus declared). */
  inScope: Map<string, string>;
  children: XmlNode[];
  parent?: XmlElement;
}

export interface XmlText {
  type: "text";
  value: string;
}

export type XmlNode = XmlElement | XmlText;

export class XmlFormatError extends Error {
  constructor(message: string) {
    super(`XML: ${message}`);
    this.name = "XmlFormatError";
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?$/;
const XMLNS_URI = "http://www.w3.org/2000/xmlns/";
const MAX_DEPTH = 32;

/** Parse a document and return its root element. */
export function parseXml(input: string): XmlElement {
  // XML 1.0 end-of-line handling: CRLF and lone CR become LF before anything else.
  const text = input.replace(/\r\n?/g, "\n");
  let pos = 0;
  const fail = (rule: string): never => {
    throw new XmlFormatError(`${rule} (at character ${pos})`);
  };

  const skipMisc = (allowDecl: boolean): void => {
    while (pos < text.length) {
      if (/\s/.test(text[pos])) {
        pos++;
      } else if (text.startsWith("<!--", pos)) {
        const end = text.indexOf("-->", pos + 4);
        if (end < 0) fail("unterminated comment");
        if (text.slice(pos + 4, end).includes("--")) fail("'--' inside a comment");
        pos = end + 3;
      } else if (allowDecl && pos === 0 && text.startsWith("<?xml", pos)) {
        const end = text.indexOf("?>", pos);
        if (end < 0) fail("unterminated XML declaration");
        pos = end + 2;
      } else {
        return;
      }
    }
  };

  skipMisc(true);
  if (text.startsWith("<!", pos) || text.startsWith("<?", pos))
    fail("DOCTYPE and processing instructions are not accepted");
  if (text[pos] !== "<") fail("expected the root element");
  const root = readElement(undefined, 0);
  skipMisc(false);
  if (pos !== text.length) fail("content after the root element");
  return root;

  function readElement(parent: XmlElement | undefined, depth: number): XmlElement {
    if (depth > MAX_DEPTH) fail("elements nested too deeply");
    pos++; // "<"
    const name = readName();
    const raw: { name: string; value: string }[] = [];
    let selfClosing = false;
    for (;;) {
      const hadSpace = skipSpace();
      if (text.startsWith("/>", pos)) {
        pos += 2;
        selfClosing = true;
        break;
      }
      if (text[pos] === ">") {
        pos++;
        break;
      }
      if (!hadSpace) fail("expected whitespace before an attribute");
      const attrName = readName();
      skipSpace();
      if (text[pos] !== "=") fail("expected '=' after an attribute name");
      pos++;
      skipSpace();
      const quote = text[pos];
      if (quote !== '"' && quote !== "'") fail("attribute value must be quoted");
      const end = text.indexOf(quote, pos + 1);
      if (end < 0) fail("unterminated attribute value");
      const rawValue = text.slice(pos + 1, end);
      if (rawValue.includes("<")) fail("'<' in an attribute value");
      // Attribute-value normalisation: literal whitespace characters become spaces.
      raw.push({ name: attrName, value: decodeEntities(rawValue.replace(/[\t\n]/g, " "), fail) });
      pos = end + 1;
    }
    if (new Set(raw.map((a) => a.name)).size !== raw.length) fail("duplicate attribute");

    const declarations = new Map<string, string>();
    for (const a of raw) {
      if (a.name === "xmlns") declarations.set("", a.value);
      else if (a.name.startsWith("xmlns:")) {
        const prefix = a.name.slice(6);
        if (prefix === "xml" || prefix === "xmlns" || a.value === "")
          fail("reserved or empty namespace declaration");
        declarations.set(prefix, a.value);
      }
    }
    const inScope = new Map(parent?.inScope ?? []);
    for (const [p, uri] of declarations) inScope.set(p, uri);

    const [prefix, local] = split(name);
    const uri = prefix === undefined ? (inScope.get("") ?? "") : inScope.get(prefix);
    if (uri === undefined) fail("undeclared namespace prefix on an element");
    const attributes: XmlAttribute[] = [];
    for (const a of raw) {
      if (a.name === "xmlns" || a.name.startsWith("xmlns:")) continue;
      const [ap, al] = split(a.name);
      if (ap === "xml") fail("xml:* attributes are not supported");
      const auri = ap === undefined ? "" : inScope.get(ap);
      if (auri === undefined) fail("undeclared namespace prefix on an attribute");
      attributes.push({ name: a.name, prefix: ap, local: al, uri: auri!, value: a.value });
    }
    const seen = new Set(attributes.map((a) => `${a.uri}\u0000${a.local}`));
    if (seen.size !== attributes.length) fail("duplicate expanded attribute name");

    const el: XmlElement = {
      type: "element",
      name,
      prefix,
      local,
      uri: uri!,
      attributes,
      declarations,
      inScope,
      children: [],
      parent,
    };
    if (selfClosing) return el;

    for (;;) {
      if (pos >= text.length) fail("unterminated element");
      if (text.startsWith("</", pos)) {
        pos += 2;
        if (readName() !== name) fail("mismatched end tag");
        skipSpace();
        if (text[pos] !== ">") fail("malformed end tag");
        pos++;
        return el;
      }
      if (text.startsWith("<!--", pos)) {
        const end = text.indexOf("-->", pos + 4);
        if (end < 0) fail("unterminated comment");
        pos = end + 3;
        continue;
      }
      if (text.startsWith("<!", pos) || text.startsWith("<?", pos))
        fail("CDATA and processing instructions are not accepted");
      if (text[pos] === "<") {
        el.children.push(readElement(el, depth + 1));
        continue;
      }
      const next = text.indexOf("<", pos);
      const end = next < 0 ? text.length : next;
      const value = decodeEntities(text.slice(pos, end), fail);
      const last = el.children[el.children.length - 1];
      if (last?.type === "text") last.value += value;
      else el.children.push({ type: "text", value });
      pos = end;
    }
  }

  function readName(): string {
    const m = /^[A-Za-z_][A-Za-z0-9._:-]*/.exec(text.slice(pos, pos + 256));
    if (!m || !NAME.test(m[0])) fail("malformed name");
    pos += m![0].length;
    return m![0];
  }

  function skipSpace(): boolean {
    const start = pos;
    while (pos < text.length && (text[pos] === " " || text[pos] === "\t" || text[pos] === "\n")) pos++;
    return pos > start;
  }
}

function split(name: string): [string | undefined, string] {
  const i = name.indexOf(":");
  return i < 0 ? [undefined, name] : [name.slice(0, i), name.slice(i + 1)];
}

function decodeEntities(s: string, fail: (rule: string) => never): string {
  if (s.includes(">") && /]]>/.test(s)) fail("']]>' in character data");
  return s.replace(/&([^;&]*);?/g, (whole, body: string) => {
    if (!whole.endsWith(";")) fail("unterminated entity reference");
    switch (body) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
    }
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (!m) fail("unknown entity reference");
    const code = m![1] !== undefined ? parseInt(m![1], 16) : parseInt(m![2], 10);
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      fail("invalid character reference");
    return String.fromCodePoint(code);
  });
}

/** Child elements with the given namespace URI and local name. */
export function childElements(el: XmlElement, uri: string, local: string): XmlElement[] {
  return el.children.filter(
    (c): c is XmlElement => c.type === "element" && c.uri === uri && c.local === local,
  );
}

/** Concatenated text content of an element's direct text children. */
export function textOf(el: XmlElement): string {
  return el.children
    .filter((c): c is XmlText => c.type === "text")
    .map((c) => c.value)
    .join("");
}

/**
 * Canonical XML 1.1 (without comments) of the subtree at `apex`, leaving out `exclude` (the
 * enveloped Signature) and everything under it. The apex renders every namespace in scope,
 * which is what inclusive canonicalisation does for a subtree such as SignedInfo.
 */
export function canonicalize(apex: XmlElement, exclude?: XmlElement): string {
  const out: string[] = [];
  const walk = (el: XmlElement, rendered: Map<string, string>): void => {
    const ns: [string, string][] = [];
    for (const [prefix, uri] of el.inScope) {
      if (prefix === "xml" || uri === XMLNS_URI) continue;
      if (uri === "" && (rendered.get("") ?? "") === "") continue;
      if (rendered.get(prefix) !== uri) ns.push([prefix, uri]);
    }
    // An element outside any default namespace under an ancestor that rendered one: xmlns="".
    if (!el.inScope.has("") && (rendered.get("") ?? "") !== "") ns.push(["", ""]);
    ns.sort((a, b) => compare(a[0], b[0]));
    const attrs = [...el.attributes].sort((a, b) => compare(a.uri, b.uri) || compare(a.local, b.local));
    out.push("<", el.name);
    for (const [prefix, uri] of ns)
      out.push(prefix === "" ? " xmlns" : ` xmlns:${prefix}`, '="', escapeAttr(uri), '"');
    for (const a of attrs) out.push(" ", a.name, '="', escapeAttr(a.value), '"');
    out.push(">");
    const next = new Map(rendered);
    for (const [prefix, uri] of ns) next.set(prefix, uri);
    for (const child of el.children) {
      if (child.type === "text") out.push(escapeText(child.value));
      else if (child !== exclude) walk(child, next);
    }
    out.push("</", el.name, ">");
  };
  walk(apex, new Map());
  return out.join("");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function escapeAttr(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/"/g, "&quot;")
    .replace(/\t/g, "&#x9;")
    .replace(/\n/g, "&#xA;")
    .replace(/\r/g, "&#xD;");
}

function escapeText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#xD;");
}
