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

function formatNetwork(n: Network): string {
  // Go prints a 16-byte network whose address is IPv4-mapped with the dotted address and the
  // 128-bit prefix length.
  return `${formatIP(n.first, n.bits)}/${n.prefix}`;
}

/** OPA's `generateIPNet`: an address is its own /32 or /128 network; otherwise a CIDR. */
function network(term: unknown): Network {
  if (typeof term !== 'string') fail('element must be string');
  const ip = parseIP(term);
  if (ip) return { first: ip.value, prefix: ip.bits, bits: ip.bits };
  const parsed = parseCIDR(term);
  if (!parsed) fail(`invalid CIDR address: ${term}`);
  return parsed;
}

/** The fewest CIDR blocks that cover [first, last] exactly. */
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

function merge(list: unknown): RegoSet {
  const networks = members(list).map(network);
  const result: string[] = [];
  for (const bits of [32, 128] as const) {
    const ranges = networks
      .filter((n) => n.bits === bits)
      .map((n) => [n.first, lastOf(n)] as [bigint, bigint])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: [bigint, bigint][] = [];
    for (const [first, last] of ranges) {
      const top = merged.at(-1);
      if (!top || first > top[1] + 1n) merged.push([first, last]);
      else if (last > top[1]) top[1] = last;
    }
    for (const [first, last] of merged) result.push(...blocks(first, last, bits).map(formatNetwork));
  }
  return new RegoSet(result);
}

/** A PDP answers in bounded time: OPA expands any CIDR; Verdict refuses one larger than this. */
const EXPAND_LIMIT = 1n << 16n;

/** OPA's `getCIDRMatchTerms`: keys and the CIDR (or address) each names. */
function matchTerms(value: unknown): [unknown, string][] {
  const cidrOf = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) {
      if (v.length === 0) fail('embedded array cannot be empty');
      if (typeof v[0] !== 'string') fail('cidr must be string');
      return v[0];
    }
    fail('operand must be string or non-empty array');
  };
  if (typeof value === 'string') return [[value, value]];
  if (Array.isArray(value)) return value.map((v, i) => [i, cidrOf(v)]);
  if (value instanceof RegoSet) return value.members.map((v) => [v, cidrOf(v)]);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).map(([k, v]) => [k, cidrOf(v)]);
  }
  fail('operand must be string, array, set or object');
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
    const left = matchTerms(a);
    const right = matchTerms(b);
    for (const [ka, ca] of left) {
      const outer = parseCIDR(ca);
      if (!outer) fail(`invalid CIDR address: ${ca}`);
      for (const [kb, cb] of right) {
        const ip = parseIP(cb);
        let inner: Network | undefined;
        if (ip) inner = { first: ip.value, prefix: ip.bits, bits: ip.bits };
        else {
          inner = parseCIDR(cb);
          if (!inner) fail(`invalid CIDR address: ${cb}`);
        }
        const sameFamily = (outer.bits === 32) === (inner.bits === 32);
        if (sameFamily && inner.first >= outer.first && lastOf(inner) <= lastOf(outer)) out.push([ka, kb]);
      }
    }
    return new RegoSet(out);
  },
};
