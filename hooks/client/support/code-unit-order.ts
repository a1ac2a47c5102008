/**
 * The order the client lists users in (members, typists, read marks): by UTF-16 code unit, as `Array.prototype.sort`
 * does by default, so that every client, whatever its locale, lists them the same way.
 */

/** Compares two strings by code unit: negative when `a` comes first, 0 when equal, positive when `b` does. */
export const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
