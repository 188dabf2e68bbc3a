/**
 * The conditions of one keyset page: the rows after a cursor (a row comparison whose placeholders
 * are numbered from $1 in the order of `after.values`) and within [from, to) on one time column.
 * Returns the WHERE clause (empty without conditions) and its values, to which the caller appends
 * its own (the LIMIT). Values are always parameters; `column` and `compare` are the caller's
 * constants.
 */
export function keysetConditions(
  after: { compare: string; values: readonly unknown[] } | null,
  range: { column: string; from?: string; to?: string },
): { where: string; values: unknown[] } {
  const values: unknown[] = [];
  const clauses: string[] = [];
  if (after) {
    values.push(...after.values);
    clauses.push(after.compare);
  }
  if (range.from !== undefined) {
    values.push(range.from);
    clauses.push(`${range.column} >= $${values.length}`);
  }
  if (range.to !== undefined) {
    values.push(range.to);
    clauses.push(`${range.column} < $${values.length}`);
  }
  return { where: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', values };
}
