/**
 * The detectors: what Verdict looks for in the text models read and write. Each is a precompiled
 * JavaScript regex with the published shape of one format, an optional validity check (a checksum,
 * a structure) that tells the real thing from a look-alike, and keywords: literals every match
 * contains, so that a text holding none of them never runs the regex (gitleaks' keyword prefilter).
 * Secret names follow gitleaks' default rule ids where one exists, so that findings compare.
 */
import { base62TokenValid, ibanValid, luhnValid } from './checksums.ts';

/** What a finding is: a credential, personal data, or an attempt to steer the model. */
export type FindingKind = 'secret' | 'pii' | 'prompt_injection';

/** One detector: a format and how to recognise it. */
export interface Detector {
  /** The finding's `detector`: a stable id (gitleaks' rule id for secrets it also covers). */
  name: string;
  kind: FindingKind;
  /** Global (`g`) regex whose whole match is the finding. */
  pattern: RegExp;
  /**
   * Literals one of which every match starts with: the regex then runs (sticky) only where one
   * occurs, found in one pass over the text shared by every detector (see DetectorPlan).
   */
  starts?: readonly string[];
  /**
   * Character classes of the first (and, when given, the second) character of every match, as
   * strings listing the characters (ASCII): like `starts`, for formats that begin with a class
   * rather than a literal (a digit, a capital letter).
   */
  triggers?: readonly (readonly [string, string?])[];
  /**
   * A necessary condition on a match starting at `i` (the characters around it), checked before
   * the regex runs there: digit pairs trigger often in ordinary text, the regex far less often.
   */
  quick?: (text: string, i: number) => boolean;
  /**
   * With `triggers`: characters that never precede a match (what its regex's lookbehind rejects
   * right before it), checked before `quick`. Inside a run of digits only the first pair is then
   * tried, where every digit pair triggered the detectors of numbers before.
   */
  notAfter?: string;
  /**
   * A character every match contains, and what may precede it: the regex then runs only from the
   * leftmost start before each occurrence (an email address around its `@`).
   */
  anchor?: { char: string; left: RegExp; maxLeft: number };
  /** Case-sensitive literals, one of which every match contains; none → the regex always runs. */
  keywords?: readonly string[];
  /** Rejects a match of the right shape that is not the real thing (checksum, structure, placeholder). */
  valid?: (match: string) => boolean;
  /** For national identifiers: the region whose format this is (ISO 3166-1 alpha-2, lower case). */
  region?: string;
}

// Secrets ---------------------------------------------------------------------------------------

function jwtValid(token: string): boolean {
  const header = token.slice(0, token.indexOf('.'));
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && 'alg' in parsed;
  } catch {
    return false;
  }
}

/** AWS's documentation keys (AKIAIOSFODNN7EXAMPLE) end in EXAMPLE; gitleaks allows them too. */
const notExample = (token: string) => !token.endsWith('EXAMPLE');

export const SECRET_DETECTORS: readonly Detector[] = [
  {
    name: 'aws-access-token',
    kind: 'secret',
    starts: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'],
    pattern: /(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g,
    valid: notExample,
  },
  {
    name: 'gcp-api-key',
    kind: 'secret',
    starts: ['AIza'],
    pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
  },
  {
    name: 'github-token',
    kind: 'secret',
    starts: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
    pattern: /(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])/g,
    valid: (token) => base62TokenValid(token, 4),
  },
  {
    name: 'github-fine-grained-pat',
    kind: 'secret',
    starts: ['github_pat_'],
    pattern: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9])/g,
  },
  {
    name: 'gitlab-pat',
    kind: 'secret',
    starts: ['glpat-'],
    pattern: /(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])/g,
  },
  {
    name: 'slack-bot-token',
    kind: 'secret',
    starts: ['xoxb-'],
    pattern: /(?<![A-Za-z0-9])xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}(?![A-Za-z0-9])/g,
  },
  {
    name: 'slack-user-token',
    kind: 'secret',
    starts: ['xoxp-', 'xoxe-'],
    pattern: /(?<![A-Za-z0-9])xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9]{28,34}(?![A-Za-z0-9])/g,
  },
  {
    name: 'slack-webhook-url',
    kind: 'secret',
    starts: ['https://hooks.slack.com/'],
    pattern:
      /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/T[A-Z0-9]{8,12}\/B[A-Z0-9]{8,12}\/[A-Za-z0-9]{24}(?![A-Za-z0-9])/g,
  },
  {
    name: 'stripe-access-token',
    kind: 'secret',
    starts: ['sk_test_', 'sk_live_', 'sk_prod_', 'rk_test_', 'rk_live_', 'rk_prod_'],
    pattern: /(?<![A-Za-z0-9_])[sr]k_(?:test|live|prod)_[A-Za-z0-9]{24,99}(?![A-Za-z0-9])/g,
  },
  {
    name: 'openai-api-key',
    kind: 'secret',
    starts: ['sk-'],
    pattern:
      /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{58,74}T3BlbkFJ[A-Za-z0-9_-]{58,74}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])/g,
  },
  {
    name: 'anthropic-api-key',
    kind: 'secret',
    starts: ['sk-ant-'],
    pattern: /(?<![A-Za-z0-9_-])sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA(?![A-Za-z0-9_-])/g,
  },
  {
    name: 'npm-access-token',
    kind: 'secret',
    starts: ['npm_'],
    pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/g,
    valid: (token) => base62TokenValid(token, 4),
  },
  {
    name: 'sendgrid-api-token',
    kind: 'secret',
    starts: ['SG.'],
    pattern: /(?<![A-Za-z0-9_-])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
  },
  {
    name: 'huggingface-access-token',
    kind: 'secret',
    starts: ['hf_'],
    pattern: /(?<![A-Za-z0-9_])hf_[A-Za-z]{34}(?![A-Za-z0-9])/g,
  },
  {
    name: 'private-key',
    kind: 'secret',
    starts: ['-----BEGIN'],
    pattern:
      /-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----/g,
  },
  {
    name: 'jwt',
    kind: 'secret',
    starts: ['eyJ'],
    pattern:
      /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{14,}\.eyJ[A-Za-z0-9_-]{14,}\.(?:[A-Za-z0-9_-]{10,}(?![A-Za-z0-9_-]))?/g,
    valid: jwtValid,
  },
];

// Personal data ---------------------------------------------------------------------------------

const DIGITS = '0123456789';
const isDigit = (code: number) => code >= 48 && code <= 57;
const DOT = 46;
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const ALNUM = `${DIGITS}${UPPER}${UPPER.toLowerCase()}`;

/** RFC 2606 / RFC 6761 names reserved for documentation and tests. */
const RESERVED_DOMAIN = /(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$/i;

function emailValid(email: string): boolean {
  return !RESERVED_DOMAIN.test(email.slice(email.lastIndexOf('@') + 1));
}

/** A card number's issuer prefix (IIN) and length are those of a scheme that issues cards. */
function cardIssued(digits: string): boolean {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p4 = Number(digits.slice(0, 4));
  const p3 = Number(digits.slice(0, 3));
  if (digits[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19; // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 36 || (p3 >= 300 && p3 <= 305) || p2 === 38) return n === 14; // Diners Club
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  return false;
}

function cardValid(match: string): boolean {
  const digits = match.replace(/[ -]/g, '');
  return cardIssued(digits) && luhnValid(digits);
}

function phoneValid(match: string): boolean {
  const digits = match.replace(/\D/g, '').length;
  return digits >= 8 && digits <= 15;
}

function ssnValid(match: string): boolean {
  const [area, group, serial] = match.split('-') as [string, string, string];
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (group === '00' || serial === '0000') return false;
  // Numbers published in advertising (Woolworth's wallet card, a 1960s ad).
  return match !== '078-05-1120' && match !== '219-09-9999';
}

const NINO_BAD_PREFIXES = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

export const PII_DETECTORS: readonly Detector[] = [
  {
    name: 'email-address',
    kind: 'pii',
    anchor: { char: '@', left: /[A-Za-z0-9._%+-]/, maxLeft: 64 },
    pattern:
      /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
    valid: emailValid,
  },
  {
    name: 'payment-card',
    kind: 'pii',
    triggers: [['23456', DIGITS]],
    notAfter: DIGITS,
    // Nor the fraction of a decimal number ("0.4539…": a float printed in full reads like a card
    // and passes Luhn one time in ten). After any other character — a CSV row's comma behind a
    // numeric column, a tab, "1x" — a card is a card; the regex rejects a digit and a separator.
    quick: (text, i) => !(text.charCodeAt(i - 1) === DOT && isDigit(text.charCodeAt(i - 2))),
    pattern: /(?<![0-9][ -]?)[2-6](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])/g,
    valid: cardValid,
  },
  {
    name: 'iban',
    kind: 'pii',
    triggers: [[UPPER, UPPER]],
    notAfter: ALNUM,
    quick: (text, i) => isDigit(text.charCodeAt(i + 2)) && isDigit(text.charCodeAt(i + 3)),
    pattern: /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g,
    valid: (match) => ibanValid(match.replace(/ /g, '')),
  },
  {
    name: 'phone-number',
    kind: 'pii',
    starts: ['+'],
    pattern: /(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}(?![\w])/g,
    valid: phoneValid,
  },
  {
    name: 'phone-number',
    kind: 'pii',
    triggers: [
      ['(', '23456789'],
      ['23456789', DIGITS],
    ],
    notAfter: `${ALNUM}_.+-`,
    quick: (text, i) => {
      const sep = text.charCodeAt(i) === 40 ? text.charCodeAt(i + 5) : text.charCodeAt(i + 3);
      return sep === 32 || sep === 46 || sep === 45 || sep === 41;
    },
    pattern: /(?<![\w.+-]|\+[0-9]{1,3}[ .-]?)\(?[2-9][0-9]{2}\)?[ .-][0-9]{3}[ .-][0-9]{4}(?![\w-]|\.[0-9])/g,
  },
  {
    name: 'us-ssn',
    kind: 'pii',
    region: 'us',
    triggers: [[DIGITS, DIGITS]],
    notAfter: `${DIGITS}-`,
    quick: (text, i) => text.charCodeAt(i + 3) === 45 && text.charCodeAt(i + 6) === 45,
    pattern: /(?<![0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])/g,
    valid: ssnValid,
  },
  {
    name: 'gb-nino',
    kind: 'pii',
    region: 'gb',
    triggers: [[UPPER, UPPER]],
    notAfter: ALNUM,
    quick: (text, i) => {
      const c = text.charCodeAt(i + 2);
      return c === 32 || isDigit(c);
    },
    pattern:
      /(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])/g,
    valid: (match) => !NINO_BAD_PREFIXES.has(match.slice(0, 2)),
  },
];

// Prompt injection ------------------------------------------------------------------------------

export const INJECTION_DETECTORS: readonly Detector[] = [
  {
    name: 'instruction-override',
    kind: 'prompt_injection',
    pattern:
      /\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|my|these|those|of|everything)\s+){0,3}(?:previous|prior|above|earlier|preceding|former|original|system|existing)\s+(?:instructions?|prompts?|rules|directions|guidelines|guardrails|context|messages?)\b/gi,
  },
  {
    name: 'role-override',
    kind: 'prompt_injection',
    pattern:
      /\b(?:you\s+are\s+now|from\s+now\s+on\s+you\s+are|act\s+as|pretend\s+(?:to\s+be|you\s+are))\s+(?:an?\s+)?(?:DAN\b|(?:in\s+)?developer\s+mode|jailbroken|unrestricted|unfiltered|uncensored)/gi,
  },
  {
    name: 'fake-system-turn',
    kind: 'prompt_injection',
    pattern:
      /<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|\[\/?INST\]|<\/?system>|\bnew\s+(?:system\s+)?instructions\s*:|^#{2,}\s*system\s*(?:prompt)?\s*:?\s*$/gim,
  },
  {
    name: 'prompt-leak',
    kind: 'prompt_injection',
    pattern:
      /\b(?:reveal|print|show|repeat|output|display|leak|dump)\s+(?:me\s+)?(?:your|the)\s+(?:(?:full|entire|hidden|original|secret|initial)\s+){0,2}(?:system\s+prompt|(?:system|hidden|initial)\s+instructions|instructions\s+above)/gi,
  },
  {
    name: 'exfiltration-link',
    kind: 'prompt_injection',
    starts: ['!['],
    pattern: /!\[[^\]\n]{0,100}\]\(\s*https?:\/\/[^)\s]{1,200}[?&][^)\s=]{1,50}=[^)\s]{0,400}\)/g,
  },
  {
    name: 'exfiltration-instruction',
    kind: 'prompt_injection',
    pattern:
      /\b(?:send|post|upload|forward|exfiltrate|email|transmit|leak)\s+(?:(?:all|the|this|any|your|my|of|user'?s?)\s+){0,3}(?:conversation|chat\s+history|data|contents?|secrets?|credentials?|api\s+keys?|passwords?|tokens?|files?|emails?)\s+to\s+(?:https?:\/\/[^\s)\]]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|the\s+(?:following|this)\s+(?:url|address|endpoint|server))/gi,
  },
];

/** Every detector, national identifiers of every region included. */
export const ALL_DETECTORS: readonly Detector[] = [
  ...SECRET_DETECTORS,
  ...PII_DETECTORS,
  ...INJECTION_DETECTORS,
];

/** The national-identifier regions Verdict knows (the `region` of a detector). */
export const PII_REGIONS: readonly string[] = [
  ...new Set(PII_DETECTORS.flatMap((d) => (d.region ? [d.region] : []))),
];

/** The detectors to run: all secrets and injections, personal data of `regions` (default: all). */
export function detectorsFor(regions: readonly string[] = PII_REGIONS): Detector[] {
  return ALL_DETECTORS.filter((d) => d.region === undefined || regions.includes(d.region));
}

/** One match of a detector in a text: `[start, end)` in JavaScript string (UTF-16) indexes. */
export interface Match {
  detector: Detector;
  start: number;
  end: number;
}

/** A detector as the scan runs it, with what the scan reads of it copied into fields. */
// NOTE: one shape, every field set (null when unused), and each detector's last match in a typed
// array by `slot`: the scan reads them at every trigger (hundreds in 10 KB of prose, mostly digit
// pairs), where entries of several shapes and a Map cost ~10 % of a scan.
interface Entry {
  detector: Detector;
  order: number;
  /** Index of the detector's last-match end in the scan's `lastEnd` (one per distinct detector). */
  slot: number;
  /** The pattern with the sticky flag, run at one position. */
  sticky: RegExp;
  /** 1 for the (ASCII) characters `detector.notAfter` lists. */
  notAfter: Uint8Array | null;
  quick: ((text: string, i: number) => boolean) | null;
  anchor: NonNullable<Detector['anchor']> | null;
  valid: ((match: string) => boolean) | null;
}

function asciiSet(chars: string, detector: Detector): Uint8Array {
  const set = new Uint8Array(128);
  for (const char of chars) set[ascii(char, detector)] = 1;
  return set;
}

function ascii(char: string, detector: Detector): number {
  const code = char.charCodeAt(0);
  if (code >= 128) throw new Error(`detector ${detector.name}: a trigger must be ASCII`);
  return code;
}

/** A literal where a detector may start, found by one of its characters (`at` from its start). */
interface Literal {
  literal: string;
  at: number;
  entry: Entry;
}

/**
 * The detectors compiled for scanning, precompiled once per scanner. Each detector runs its regex
 * only where it may start: those with `triggers` where their trigger characters are, those with
 * `starts` or an `anchor` where one of their literals begins; the others run as global regexes
 * over the whole text (skipped when the text lacks all of their keywords). One pass over the text
 * finds those places for every detector.
 */
// NOTE: the pass looks at a character only when it may be a key: a trigger's first character, or
// the first character of each literal that is not a lower-case letter (its `_`, `-`, `:`, capital
// or digit), one lookup that prose passes at nearly every character. Keyed by a character inside
// a literal, the literal's start is found a few characters late, so those are queued and tried in
// order after the pass; the result is match for match the plan before, which looked up every
// character's pair (kept as test/fixtures/guardrails/reference-plan.ts, compared with this one by
// test/guardrails/plan.test.ts): a detector's positions are still visited in order, and its last
// match (where its next may start) is its own.
export class DetectorPlan {
  readonly detectors: readonly Detector[];
  // NOTE: the lookups are typed arrays of indexes into lists (0 = none): read at each key character,
  // where a sparse JS array cost more than the detectors' regexes themselves.
  /** 1 for the (ASCII) characters the pass stops at. */
  private readonly keys = new Uint8Array(128);
  /** By first character: trigger entries whose trigger is one character. */
  private readonly first = new Uint16Array(128);
  /** By first two characters (`c1 * 128 + c2`): trigger entries whose trigger is two characters. */
  private readonly pairs = new Uint16Array(128 * 128);
  private readonly triggered: Entry[][] = [[]];
  /** By list of `triggered` (`index * 128 + c`): 1 when every entry of the list has `c` in its `notAfter`. */
  private blocked = new Uint8Array(128);
  /** By key character: the literals keyed by it. */
  private readonly byKey = new Uint16Array(128);
  private readonly literals: Literal[][] = [[]];
  private readonly global: { detector: Detector; order: number }[] = [];
  /** How many distinct detectors have entries (the length of a scan's `lastEnd`). */
  private readonly slots: number;

  constructor(detectors: readonly Detector[]) {
    this.detectors = detectors;
    const slots = new Map<Detector, number>();
    detectors.forEach((detector, order) => {
      if (!detector.starts && !detector.triggers && !detector.anchor) {
        this.global.push({ detector, order });
        return;
      }
      const sticky = new RegExp(detector.pattern.source, detector.pattern.flags.replace('g', '') + 'y');
      const slot = slots.get(detector) ?? slots.size;
      slots.set(detector, slot);
      // Every key, in this order, in every entry: one shape.
      const entry: Entry = {
        detector,
        order,
        slot,
        sticky,
        notAfter: detector.notAfter === undefined ? null : asciiSet(detector.notAfter, detector),
        quick: detector.quick ?? null,
        anchor: detector.anchor ?? null,
        valid: detector.valid ?? null,
      };
      if (detector.triggers) {
        for (const [firsts, seconds] of detector.triggers)
          for (const a of firsts) {
            this.keys[ascii(a, detector)] = 1;
            if (seconds === undefined) this.trigger(ascii(a, detector), entry);
            else
              for (const b of seconds)
                this.trigger(ascii(a, detector) * 128 + ascii(b, detector), entry, true);
          }
        return;
      }
      for (const literal of detector.starts ?? [detector.anchor!.char]) {
        for (const char of literal) ascii(char, detector);
        const at = Math.max(0, literal.search(/[^a-z]/));
        const key = literal.charCodeAt(at);
        this.keys[key] = 1;
        if (this.byKey[key] === 0) {
          this.byKey[key] = this.literals.length;
          this.literals.push([]);
        }
        this.literals[this.byKey[key]!]!.push({ literal, at, entry });
      }
    });
    this.slots = slots.size;
    this.blocked = new Uint8Array(this.triggered.length * 128);
    this.triggered.forEach((entries, index) => {
      for (let c = 0; c < 128; c++)
        if (entries.length > 0 && entries.every((e) => e.notAfter?.[c] === 1))
          this.blocked[index * 128 + c] = 1;
    });
  }

  private trigger(key: number, entry: Entry, pair = false): void {
    const table = pair ? this.pairs : this.first;
    if (table[key] === 0) {
      table[key] = this.triggered.length;
      this.triggered.push([]);
    }
    this.triggered[table[key]!]!.push(entry);
  }

  /**
   * Every valid match in `text`, ordered by detector, then position. A detector's match never
   * starts inside its previous match.
   */
  matches(text: string): Match[] {
    const found: (Match & { order: number })[] = [];
    const lastEnd = new Int32Array(this.slots);
    const { keys, first, pairs, triggered, blocked, byKey, literals } = this;
    const queued: { at: number; entry: Entry }[] = [];
    const length = text.length;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 128 || keys[code] === 0) continue;
      const prev = i > 0 ? text.charCodeAt(i - 1) : 0;
      const after = prev < 128 ? prev : 0;
      const one = first[code]!;
      if (one !== 0 && blocked[one * 128 + after] === 0) tryAll(text, i, triggered[one]!, found, lastEnd);
      const next = text.charCodeAt(i + 1); // NaN past the end
      if (next < 128) {
        const two = pairs[code * 128 + next]!;
        if (two !== 0 && blocked[two * 128 + after] === 0) tryAll(text, i, triggered[two]!, found, lastEnd);
      }
      const keyed = byKey[code]!;
      if (keyed !== 0)
        for (const { literal, at, entry } of literals[keyed]!)
          if (i >= at && text.startsWith(literal, i - at)) queued.push({ at: i - at, entry });
    }
    if (queued.length > 0) {
      // A stable sort: at one position, entries stay in the order they were queued.
      queued.sort((a, b) => a.at - b.at);
      for (const { at, entry } of queued) tryEntry(text, at, entry, found, lastEnd);
    }
    for (const { detector, order } of this.global) {
      if (detector.keywords && !detector.keywords.some((k) => text.includes(k))) continue;
      for (const m of globalMatches(text, detector)) found.push({ ...m, order });
    }
    found.sort((a, b) => a.order - b.order || a.start - b.start);
    return found.map(({ detector, start, end }) => ({ detector, start, end }));
  }
}

/** Runs the entries triggered at `i`. */
function tryAll(
  text: string,
  i: number,
  entries: readonly Entry[],
  found: (Match & { order: number })[],
  lastEnd: Int32Array,
): void {
  for (let k = 0; k < entries.length; k++) tryEntry(text, i, entries[k]!, found, lastEnd);
}

/** Runs one entry where it may start, at `i` (for an anchor: from the leftmost start before it). */
function tryEntry(
  text: string,
  i: number,
  entry: Entry,
  found: (Match & { order: number })[],
  lastEnd: Int32Array,
): void {
  if (entry.notAfter !== null && i > 0) {
    const prev = text.charCodeAt(i - 1);
    if (prev < 128 && entry.notAfter[prev] === 1) return;
  }
  if (entry.quick !== null && !entry.quick(text, i)) return;
  const from = entry.anchor !== null ? leftmost(text, i, entry.anchor) : i;
  for (let at = from; at <= i; at++) {
    if (at < lastEnd[entry.slot]!) continue;
    entry.sticky.lastIndex = at;
    const m = entry.sticky.exec(text);
    if (m === null) continue;
    let length = m[0].length;
    if (entry.valid !== null && !entry.valid(m[0])) {
      // An IBAN followed by a word of capitals reads as a longer, invalid one: retry at its
      // country's length before giving up.
      const trimmed = entry.detector.name === 'iban' ? ibanPrefix(m[0]) : null;
      if (trimmed === null) return;
      length = trimmed;
    }
    found.push({ detector: entry.detector, start: at, end: at + length, order: entry.order });
    lastEnd[entry.slot] = at + length;
    return;
  }
}

/** The leftmost index from which `anchor.left` characters run up to `at`. */
function leftmost(text: string, at: number, anchor: NonNullable<Detector['anchor']>): number {
  let from = at;
  while (from > 0 && at - from < anchor.maxLeft && anchor.left.test(text[from - 1]!)) from--;
  return from;
}

/** Every valid match of a detector without starts or anchor, scanning the whole text. */
function globalMatches(text: string, detector: Detector): Match[] {
  const matches: Match[] = [];
  const pattern = detector.pattern;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    const found = m[0];
    if (found.length === 0) {
      pattern.lastIndex++;
      continue;
    }
    if (detector.valid && !detector.valid(found)) {
      // An IBAN followed by a word of capitals reads as a longer, invalid one: retry at its
      // country's length before giving up.
      const trimmed = detector.name === 'iban' ? ibanPrefix(found) : null;
      if (trimmed !== null) matches.push({ detector, start: m.index, end: m.index + trimmed });
      continue;
    }
    matches.push({ detector, start: m.index, end: m.index + found.length });
  }
  return matches;
}

/** Every valid match of every detector in `text`, in detector order (compiles a plan each call). */
export function findMatches(text: string, detectors: readonly Detector[]): Match[] {
  return new DetectorPlan(detectors).matches(text);
}

/** The length of the longest valid IBAN at the start of `match` (spaces included), or null. */
function ibanPrefix(match: string): number | null {
  let compact = '';
  for (let i = 0; i < match.length; i++) {
    if (match[i] !== ' ') compact += match[i];
    if (compact.length >= 15 && match[i] !== ' ' && (match[i + 1] === ' ' || i + 1 === match.length)) {
      if (i + 1 < match.length && ibanValid(compact)) return i + 1;
    }
  }
  return null;
}
