/**
 * Byte strings as Go holds them. A Rego string is Go's `string`: any bytes. Where a builtin turns
 * bytes into a string (hex.decode, a decoded token), the JSON that leaves OPA has each byte that is
 * not valid UTF-8 replaced by U+FFFD, one per byte (Go's `encoding/json`, `utf8.DecodeRune`); the
 * WHATWG decoder replaces maximal subparts instead, so the count can differ. Decoded here as Go does.
 */
import { fail } from './types.ts';

/** Bytes as the string Go's JSON encoder would write them (invalid bytes → U+FFFD each). */
export function goString(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    let need = 0;
    let cp = 0;
    let min = 0;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
      min = 0x10000;
    }
    let ok = need > 0;
    for (let k = 1; ok && k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) {
      out += '\ufffd';
      i++;
      continue;
    }
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return out;
}

/** A Rego string's bytes (UTF-8). */
export function bytesOf(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/**
 * Go's `base64.URLEncoding.DecodeString` after OPA's padding fix (RFC 7515 appendix C): strict about
 * the alphabet and padding, where Node's decoder skips what it does not know. Go drops CR and LF.
 */
export function base64UrlDecode(text: string): Buffer {
  let s = text;
  if (!s.endsWith('=')) {
    const r = s.replace(/[\r\n]/g, '').length % 4;
    if (r === 2) s += '==';
    else if (r === 3) s += '=';
    else if (r === 1) fail(`illegal base64url string: ${text}`);
  }
  const clean = s.replace(/[\r\n]/g, '');
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9_-]*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/.test(clean)) {
    fail(`illegal base64 data in ${JSON.stringify(text)}`);
  }
  return Buffer.from(clean, 'base64url');
}
