/**
 * The `activity` message, serialized once per broadcast: the same bytes go to every subscriber and into history.
 * `activityJson` is already-validated JSON (see `activity-validator.ts`), so it is spliced in, not re-encoded.
 */
export function encodeActivityFrame (cursor: string, activityJson: string): Buffer {
  return Buffer.from(`{"type":"activity","cursor":${JSON.stringify(cursor)},"data":${activityJson}}`)
}
