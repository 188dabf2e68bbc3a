/**
 * OPA's `net.cidr_*` builtins the wasm target leaves to the host (topdown/cidr.go), on addresses as
 * BigInt. Hand-written rather than on an IP library: the answers must be Go's `net` package's —
 * its parser (no leading zeros in IPv4, no zones) and its printing (RFC 5952, an IPv4-mapped IPv6
 * address printed dotted) — which the IP libraries on npm each differ from somewhere.
 */
import { RegoSet } from '../rego-value.ts';
import { fail, type HostBuiltin } from './types.ts';

/** An address: its value and its width in bits (32 or 128). */
interface Address {
  value: bigint;
  bits: 32 | 128;
}

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    // Go (1.17+) refuses leading zeros, which older parsers read as octal.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIPv6(text: string): bigint | undefined {
  let body = text;
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 address stands for the last two groups.
    const v4 = parseIPv4(body.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const read = (s: string): bigint[] | undefined => {
    if (s === '') return [];
    const out: bigint[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = read(halves[0]!);
  const rest = halves.length === 2 ? read(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let all: bigint[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    all = [...head, ...Array<bigint>(missing).fill(0n), ...rest];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Go's `net.ParseIP`; an IPv4-mapped IPv6 address is IPv4 (as `To4()` makes it). */
export function parseIP(text: string): Address | undefined {
  if (text.includes(':')) {
    const value = parseIPv6(text);
    if (value === undefined) return undefined;
    if (value >> 32n === 0xffffn) return { value: value & 0xffffffffn, bits: 32 };
    return { value, bits: 128 };
  }
  const value = parseIPv4(text);
  return value === undefined ? undefined : { value, bits: 32 };
}

/** A network: its first address, prefix length and width. */
interface Network {
  first: bigint;
  prefix: number;
  bits: 32 | 128;
}

/** Go's `net.ParseCIDR` (the network, masked). A mapped IPv4 CIDR keeps its 128-bit width. */
export function parseCIDR(text: string): Network | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const bits = addressText.includes(':') ? 128 : 32;
  const value = bits === 128 ? parseIPv6(addressText) : parseIPv4(addressText);
  if (value === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bits) return undefined;
  const size = BigInt(bits - prefix);
  return { first: (value >> size) << size, prefix, bits };
}

function lastOf(n: Network): bigint {
  return n.first + (1n << BigInt(n.bits - n.prefix)) - 1n;
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

/** Go's `net.IP.String()`: RFC 5952 (the first longest run of two or more zero groups is `::`). */
export function formatIP(value: bigint, bits: 32 | 128): string {
  if (bits === 32) return formatIPv4(value);
  if (value >> 32n === 0xffffn) return formatIPv4(value & 0xffffffffn);
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

const MAPPED = 0xffffn << 32n;
const isMapped = (v: bigint) => v >> 32n === 0xffffn;

/** A network in OPA's merge: its range in one 128-bit space (IPv4 mapped) and how Go prints it. */
interface MergeRange {
  first: bigint;
  last: bigint;
  /** Go's IPNet.String() of the network as given; null once merged. */
  text: string | null;
}

/** Go's IPNet.String() for a parsed CIDR (a 16-byte IPv4-mapped network prints dotted). */
function networkText(n: Network): string {
  if (n.bits === 128 && isMapped(n.first)) return `${formatIP(n.first, 128)}/${Math.max(n.prefix - 96, 0)}`;
  return `${formatIP(n.first, n.bits)}/${n.prefix}`;
}

/**
 * OPA's `generateIPNet` and `GetAddressRange`: a bare IPv4 address is its classful network
 * (IP.DefaultMask: /8, /16, /24), printed with the address unmasked; a bare IPv6 address is an
 * error; IPv4 ranges live in the IPv4-mapped part of the IPv6 space, as OPA compares them.
 */
function mergeRange(term: unknown): MergeRange {
  if (typeof term !== 'string') fail('element must be string');
  const ip = parseIP(term);
  if (ip) {
    if (ip.bits === 128) fail('IPv6 invalid: needs prefix length');
    const octet = Number(ip.value >> 24n);
    // NOTE: Go has no default mask for class D and E (224.0.0.0 and above): OPA then prints
    // "<nil>" and merges an empty range, which Verdict does not reproduce.
    if (octet >= 224) fail(`net.cidr_merge: ${term} has no default mask (class D/E)`);
    const prefix = octet < 128 ? 8 : octet < 192 ? 16 : 24;
    const size = BigInt(32 - prefix);
    const first = (ip.value >> size) << size;
    return {
      first: MAPPED | first,
      last: MAPPED | (first + (1n << size) - 1n),
      text: `${formatIP(ip.value, 32)}/${prefix}`,
    };
  }
  const n = parseCIDR(term);
  if (!n) fail(`invalid CIDR address: ${term}`);
  const base = n.bits === 32 ? MAPPED | n.first : n.first;
  return { first: base, last: base + (1n << BigInt(n.bits - n.prefix)) - 1n, text: networkText(n) };
}

function blocks(first: bigint, last: bigint, bits: 32 | 128): Network[] {
  const out: Network[] = [];
  let start = first;
  while (start <= last) {
    let size = 0;
    while (size < bits) {
      const next = BigInt(size + 1);
      if ((start >> next) << next !== start || start + (1n << next) - 1n > last) break;
      size++;
    }
    out.push({ first: start, prefix: bits - size, bits });
    start += 1n << BigInt(size);
  }
  return out;
}

function members(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof RegoSet) return value.members;
  fail('operand must be an array');
}

/** The fewest CIDR blocks that cover [first, last], as OPA prints them. */
function blockTexts(first: bigint, last: bigint): string[] {
  // A range that starts in the IPv4-mapped space is split as IPv4 (OPA's createSpanningCIDR).
  if (isMapped(first) && isMapped(last)) {
    return blocks(first & 0xffffffffn, last & 0xffffffffn, 32).map(
      (b) => `${formatIP(b.first, 32)}/${b.prefix}`,
    );
  }
  return blocks(first, last, 128).map((b) => networkText(b));
}

/** OPA's evalNetCIDRMerge: sorted by last then first address, merged from the end. */
function merge(list: unknown): RegoSet {
  const ranges = members(list).map(mergeRange);
  ranges.sort((a, b) =>
    a.last !== b.last ? (a.last < b.last ? -1 : 1) : a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
  );
  for (let i = ranges.length - 1; i > 0; i--) {
    const current = ranges[i]!;
    const previous = ranges[i - 1]!;
    // Go's GetPreviousIP stops at 0.0.0.0 and ::.
    const floor = current.first === MAPPED || current.first === 0n;
    const before = floor ? current.first : current.first - 1n;
    if (before <= previous.last) {
      ranges[i - 1] = {
        // biome-ignore lint/complexity/useMathMinMax: BigInts, which Math.min cannot take
        first: previous.first < current.first ? previous.first : current.first,
        last: current.last,
        text: null,
      };
      ranges.splice(i, 1);
    }
  }
  return new RegoSet(ranges.flatMap((r) => (r.text !== null ? [r.text] : blockTexts(r.first, r.last))));
}

/** A PDP answers in bounded time: OPA expands any CIDR; Verdict refuses one larger than this. */
const EXPAND_LIMIT = 1n << 16n;

/** OPA's evalNetCIDRContainsMatchesOperand: (key, cidr term) pairs; other types yield none. */
function matchTerms(value: unknown, operand: number): [unknown, unknown][] {
  const cidrOf = (v: unknown): unknown => {
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && v.length > 0) return v[0];
    fail(`operand ${operand}: element must be string or non-empty array`);
  };
  if (typeof value === 'string') return [[value, value]];
  if (Array.isArray(value)) return value.map((v, i) => [i, cidrOf(v)]);
  if (value instanceof RegoSet) return value.members.map((v) => [v, cidrOf(v)]);
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).map(([k, v]) => [k, cidrOf(v)]);
  return [];
}

/** A network as Go's IPNet.Contains sees it: an IPv4-mapped IPv6 network is IPv4. */
function containsView(n: Network): Network {
  if (n.bits === 128 && isMapped(n.first) && n.prefix >= 96) {
    return { first: n.first & 0xffffffffn, prefix: n.prefix - 96, bits: 32 };
  }
  return n;
}

/** OPA's net.cidr_contains(a, b): b an address or a CIDR. */
function cidrContains(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string') fail('operand 1 must be a string');
  const outerParsed = parseCIDR(a);
  if (!outerParsed) fail(`invalid CIDR address: ${a}`);
  const outer = containsView(outerParsed);
  if (typeof b !== 'string') fail('operand 2 must be a string');
  const ip = parseIP(b);
  let inner: Network;
  if (ip) inner = { first: ip.value, prefix: ip.bits, bits: ip.bits };
  else {
    const parsed = parseCIDR(b);
    if (!parsed) fail(`not a valid textual representation of an IP address or CIDR: ${b}`);
    inner = containsView(parsed);
  }
  return outer.bits === inner.bits && inner.first >= outer.first && lastOf(inner) <= lastOf(outer);
}

/** The network/address builtins. */
export const NET_BUILTINS: Record<string, HostBuiltin> = {
  'net.cidr_is_valid': ([cidr]) => typeof cidr === 'string' && parseCIDR(cidr) !== undefined,
  'net.cidr_merge': ([list]) => merge(list),
  'net.cidr_expand': ([cidr]) => {
    if (typeof cidr !== 'string') fail('operand must be a string');
    const n = parseCIDR(cidr);
    if (!n) fail(`invalid CIDR address: ${cidr}`);
    const size = 1n << BigInt(n.bits - n.prefix);
    if (size > EXPAND_LIMIT) fail(`net.cidr_expand: ${cidr} holds more than ${EXPAND_LIMIT} addresses`);
    const out: string[] = [];
    const mapped = n.bits === 128 && n.first >> 32n === 0xffffn;
    for (let a = n.first; a < n.first + size; a++) {
      out.push(formatIP(a, n.bits === 32 || mapped ? (mapped ? 128 : 32) : 128));
    }
    return new RegoSet(out);
  },
  'net.cidr_contains_matches': ([a, b]) => {
    const out: unknown[] = [];
    const left = matchTerms(a, 1);
    if (left.length === 0) return new RegoSet([]);
    const right = matchTerms(b, 2);
    for (const [ka, ca] of left) {
      for (const [kb, cb] of right) if (cidrContains(ca, cb)) out.push([ka, kb]);
    }
    return new RegoSet(out);
  },
};
