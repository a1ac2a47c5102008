/**
 * A `Map` kept in recency order (its insertion order): the entry set last is the newest, the first one the oldest, and
 * the oldest goes once there are too many. For what the client keeps per PoV, up to a bound.
 */

/** Sets `key` to `value` as the newest entry of `map`, then drops the oldest if that made more than `max`. */
export function setNewest<K, V> (map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value!)
}
