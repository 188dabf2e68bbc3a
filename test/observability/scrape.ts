/**
 * The value of one sample in a Prometheus text exposition, matched on exactly these labels;
 * undefined when absent.
 */
export function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      found[pair[1]!] = pair[2]!;
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(found).length) continue;
    if (keys.every((k) => found[k] === labels[k])) return Number(match[3]);
  }
  return undefined;
}

/** Every metric name in a Prometheus text exposition. */
export function metricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (match && !line.startsWith('#')) names.add(match[1]!);
  }
  return names;
}
