import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A structural validator of OCSF events, built from the schema's own definitions as the OCSF
 * repository writes them (test/fixtures/ocsf-1.9.0/, see its README): the event class with the
 * classes it extends, the objects, the profiles and the attribute dictionary. For the event and every
 * object in it, it checks:
 *
 * - every attribute is defined for that class or object (unknown attributes are refused), and an
 *   attribute a profile adds is present only when the event declares that profile in
 *   `metadata.profiles` (and the class admits the profile);
 * - every `required` attribute is present, and the `at_least_one` / `just_one` constraints hold;
 * - types: strings, integers, numbers, booleans, arrays (`is_array`), nested objects (validated
 *   against their own definition; `object` is open, as for `unmapped`), a type's `regex`;
 * - enumerations (`enum` of the dictionary merged with the class's or object's own), and that an
 *   enumerated id's sibling (`severity` for `severity_id`...) is its caption, unless the id is 99
 *   (Other, where the source names it);
 * - the classification: `class_uid` = category uid × 1000 + the class's uid, `category_uid`, and
 *   `type_uid` = `class_uid` × 100 + `activity_id`.
 *
 * The OCSF project's own validator is a server (ocsf-server, Elixir), not a library a test can run:
 * this checker reads the same definition files instead.
 */
export interface OcsfValidator {
  /** The class's name, e.g. `api_activity`. */
  readonly className: string;
  /** The problems found in one event, as `path: problem` lines; empty when it is valid. */
  validate(event: unknown): string[];
}

/** Where the vendored OCSF 1.9.0 definitions are. */
export const OCSF_1_9_0 = path.resolve(import.meta.dirname, '../fixtures/ocsf-1.9.0');

/**
 * Profiles the vendored definitions include but that were not vendored (Verdict declares none of
 * them): their attributes are unknown to this validator, hence refused — as they must be in an
 * event that does not declare the profile.
 */
const NOT_VENDORED_PROFILES = new Set([
  'cloud',
  'container',
  'data_classification',
  'datetime',
  'host',
  'osint',
  'trace',
]);

/** The event classes that were vendored, by name (`extends` names a class, not a file). */
const CLASS_FILES: Record<string, string> = {
  base_event: 'events/base_event.json',
  application: 'events/application/application.json',
  api_activity: 'events/application/api_activity.json',
};

interface EnumValue {
  caption: string;
}

/** One attribute of a class or object, with what the dictionary says of it. */
interface Attribute {
  name: string;
  requirement: 'required' | 'recommended' | 'optional';
  type: string;
  isArray: boolean;
  enum?: Record<string, EnumValue>;
  sibling?: string;
  /** The profile that adds it (present only when the event declares it), or undefined. */
  profile?: string;
}

/** A class or object, its `extends` chain and includes resolved. */
interface Definition {
  name: string;
  attributes: Map<string, Attribute>;
  atLeastOne: string[][];
  justOne: string[][];
  /** Profiles the class admits (classes only). */
  profiles: Set<string>;
  /** The category's name (classes only; from the nearest class that names one). */
  category?: string;
  /** The class's own uid within its category (classes only). */
  uid?: number;
}

type Json = Record<string, any>;

/** Builds the validator of one event class from the definitions in `dir`. */
export function ocsfValidator(className: string, dir = OCSF_1_9_0): OcsfValidator {
  const read = (file: string): Json => JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  const dictionary = read('dictionary.json');
  const categories = read('categories.json').attributes as Record<string, { uid: number }>;
  const types = dictionary.types.attributes as Record<string, Json>;
  const objects = new Map<string, Definition>();

  /** Merges one definition file's attributes (its includes first) over `into`. */
  function merge(into: Map<string, Attribute>, raw: Json, profile: string | undefined): void {
    for (const include of (raw.attributes?.$include ?? []) as string[]) {
      const name = path.basename(include, '.json');
      if (!include.startsWith('profiles/')) throw new Error(`unexpected include ${include}`);
      if (NOT_VENDORED_PROFILES.has(name)) continue;
      const included = read(include);
      merge(into, included, included.name);
    }
    for (const [name, own] of Object.entries((raw.attributes ?? {}) as Record<string, Json>)) {
      if (name === '$include') continue;
      const entry = dictionary.attributes[name] as Json | undefined;
      if (!entry) throw new Error(`${raw.name}.${name} is not in the vendored dictionary`);
      const before = into.get(name);
      const enumValues = { ...entry.enum, ...before?.enum, ...own.enum };
      into.set(name, {
        name,
        requirement: own.requirement ?? before?.requirement ?? 'optional',
        type: own.type ?? entry.type,
        isArray: Boolean(own.is_array ?? entry.is_array),
        ...(Object.keys(enumValues).length > 0 ? { enum: enumValues } : {}),
        ...(entry.sibling ? { sibling: entry.sibling } : {}),
        // `"profile": null` in a class takes an attribute out of the profile that brought it.
        profile: 'profile' in own ? (own.profile ?? undefined) : (before?.profile ?? profile),
      });
    }
  }

  function constraintsOf(raw: Json, parent: Definition | undefined) {
    return {
      atLeastOne: [
        ...(parent?.atLeastOne ?? []),
        ...(raw.constraints?.at_least_one ? [raw.constraints.at_least_one] : []),
      ],
      justOne: [...(parent?.justOne ?? []), ...(raw.constraints?.just_one ? [raw.constraints.just_one] : [])],
    };
  }

  function objectDefinition(name: string): Definition {
    const known = objects.get(name);
    if (known) return known;
    let raw: Json;
    try {
      raw = read(`objects/${name}.json`);
    } catch {
      throw new Error(`the object definition '${name}' is not vendored in ${dir}`);
    }
    const parent = raw.extends ? objectDefinition(raw.extends) : undefined;
    const attributes = new Map(parent?.attributes);
    merge(attributes, raw, undefined);
    const definition: Definition = {
      name,
      attributes,
      ...constraintsOf(raw, parent),
      profiles: new Set([...(parent?.profiles ?? []), ...((raw.profiles ?? []) as string[])]),
    };
    objects.set(name, definition);
    return definition;
  }

  function classDefinition(name: string): Definition {
    const file = CLASS_FILES[name];
    if (!file) throw new Error(`the event class '${name}' is not vendored`);
    const raw = read(file);
    const parent = raw.extends ? classDefinition(raw.extends) : undefined;
    const attributes = new Map(parent?.attributes);
    merge(attributes, raw, undefined);
    return {
      name,
      attributes,
      ...constraintsOf(raw, parent),
      profiles: new Set([...(parent?.profiles ?? []), ...((raw.profiles ?? []) as string[])]),
      category: raw.category ?? parent?.category,
      uid: raw.uid ?? parent?.uid,
    };
  }

  const eventClass = classDefinition(className);
  const categoryUid = categories[eventClass.category ?? '']?.uid;
  if (categoryUid === undefined || eventClass.uid === undefined)
    throw new Error(`${className}: no category or uid`);
  const classUid = categoryUid * 1000 + eventClass.uid;

  /** The JSON kind a scalar type asks for, through the type's `type` chain; with its regex. */
  function scalar(type: string): {
    kind: 'string' | 'integer' | 'number' | 'boolean' | 'any';
    regex?: RegExp;
  } {
    let regex: RegExp | undefined;
    for (let t = type; ; ) {
      const def = types[t];
      if (!def) throw new Error(`unknown type ${t}`);
      if (def.regex && !regex) regex = new RegExp(def.regex);
      if (t === 'string_t') return { kind: 'string', regex };
      if (t === 'integer_t' || t === 'long_t') return { kind: 'integer', regex };
      if (t === 'float_t') return { kind: 'number', regex };
      if (t === 'boolean_t') return { kind: 'boolean', regex };
      if (t === 'json_t') return { kind: 'any', regex };
      if (!def.type) throw new Error(`type ${t} has no base type`);
      t = def.type;
    }
  }

  const isObject = (value: unknown): value is Json =>
    value !== null && typeof value === 'object' && !Array.isArray(value);

  function checkValue(
    value: unknown,
    attribute: Attribute,
    at: string,
    profiles: Set<string>,
    problems: string[],
  ) {
    if (attribute.type === 'object') {
      if (!isObject(value)) problems.push(`${at}: must be an object`);
      return;
    }
    if (!attribute.type.endsWith('_t')) {
      if (!isObject(value)) problems.push(`${at}: must be an object (${attribute.type})`);
      else checkObject(value, objectDefinition(attribute.type), at, profiles, problems);
      return;
    }
    const { kind, regex } = scalar(attribute.type);
    const fits =
      kind === 'any' ||
      (kind === 'string' && typeof value === 'string') ||
      (kind === 'integer' && Number.isSafeInteger(value)) ||
      (kind === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
      (kind === 'boolean' && typeof value === 'boolean');
    if (!fits) {
      problems.push(`${at}: must be ${kind === 'integer' ? 'an integer' : `a ${kind}`} (${attribute.type})`);
      return;
    }
    if (regex && typeof value === 'string' && !regex.test(value)) {
      problems.push(`${at}: does not match the ${attribute.type} pattern`);
    }
    if (attribute.enum && !(String(value) in attribute.enum)) {
      problems.push(
        `${at}: ${JSON.stringify(value)} is not one of ${Object.keys(attribute.enum).join(', ')}`,
      );
    }
  }

  function checkObject(
    value: Json,
    definition: Definition,
    at: string,
    profiles: Set<string>,
    problems: string[],
  ) {
    for (const [key, item] of Object.entries(value)) {
      const where = at ? `${at}.${key}` : key;
      const attribute = definition.attributes.get(key);
      if (!attribute) {
        problems.push(`${where}: not an attribute of ${definition.name}`);
        continue;
      }
      if (attribute.profile && !profiles.has(attribute.profile)) {
        problems.push(
          `${where}: belongs to the ${attribute.profile} profile, which the event does not declare`,
        );
      }
      if (item === null || item === undefined) {
        problems.push(`${where}: null (leave the attribute out instead)`);
        continue;
      }
      // The classification is checked against the class below (the base event's enums say 0 only).
      if (at === '' && (key === 'class_uid' || key === 'category_uid' || key === 'type_uid')) {
        if (!Number.isSafeInteger(item)) problems.push(`${where}: must be an integer`);
        continue;
      }
      if (attribute.isArray) {
        if (!Array.isArray(item)) problems.push(`${where}: must be an array`);
        else {
          for (const [i, element] of item.entries()) {
            checkValue(element, attribute, `${where}[${i}]`, profiles, problems);
          }
        }
      } else {
        checkValue(item, attribute, where, profiles, problems);
      }
      const caption = attribute.enum?.[String(item)]?.caption;
      if (attribute.sibling && caption && item !== 99 && key.endsWith('_id') && attribute.sibling in value) {
        if (value[attribute.sibling] !== caption) {
          problems.push(
            `${at ? `${at}.` : ''}${attribute.sibling}: must be '${caption}' (the caption of ${key} ${item})`,
          );
        }
      }
    }
    for (const attribute of definition.attributes.values()) {
      if (attribute.requirement !== 'required' || attribute.name in value) continue;
      if (attribute.profile && !profiles.has(attribute.profile)) continue;
      problems.push(`${at ? `${at}.` : ''}${attribute.name}: required by ${definition.name}`);
    }
    for (const group of definition.atLeastOne) {
      if (!group.some((name) => name in value)) {
        problems.push(`${at || definition.name}: needs at least one of ${group.join(', ')}`);
      }
    }
    for (const group of definition.justOne) {
      if (group.filter((name) => name in value).length !== 1) {
        problems.push(`${at || definition.name}: needs exactly one of ${group.join(', ')}`);
      }
    }
  }

  return {
    className,
    validate(event) {
      const problems: string[] = [];
      if (!isObject(event)) return ['the event must be an object'];
      const declared = event.metadata?.profiles;
      const profiles = new Set<string>(Array.isArray(declared) ? declared : []);
      for (const profile of profiles) {
        if (!eventClass.profiles.has(profile))
          problems.push(`metadata.profiles: ${className} has no profile '${profile}'`);
      }
      checkObject(event, eventClass, '', profiles, problems);
      if (event.class_uid !== classUid) problems.push(`class_uid: must be ${classUid} (${className})`);
      if (event.category_uid !== categoryUid) problems.push(`category_uid: must be ${categoryUid}`);
      if (event.type_uid !== classUid * 100 + event.activity_id) {
        problems.push(
          `type_uid: must be class_uid * 100 + activity_id (${classUid * 100 + event.activity_id})`,
        );
      }
      return problems;
    },
  };
}
