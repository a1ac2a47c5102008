/**
 * The `activity` message, serialized once per broadcast: the same bytes go to every subscriber and into history.
 * `activityJson` is already-validated JSON (see `activity-serializer.ts`), so it is spliced in, not re-encoded; from
 * the Redis broker's channel it comes as the bytes Redis sent.
 */
export function encodeActivityFrame (cursor: string, activityJson: string | Buffer): Buffer {
  const head = `{"type":"activity","cursor":${JSON.stringify(cursor)},"data":`
  if (typeof activityJson === 'string') return Buffer.from(`${head}${activityJson}}`)
  // The UTF-8 bytes as they came from Redis: copied once around the head, never decoded to a string and encoded back.
  const headLength = Buffer.byteLength(head)
  const frame = Buffer.allocUnsafe(headLength + activityJson.length + 1)
  frame.write(head, 0, 'utf8')
  activityJson.copy(frame, headLength)
  frame[frame.length - 1] = 0x7d // }
  return frame
}

/**
 * The complete WebSocket text frame around `payload` (RFC 6455 §5.2: FIN, opcode 1, no mask — server frames are not
 * masked). A broadcast is framed once and the same bytes are written to every subscriber's socket, instead of ws
 * framing it again for each one. Not cached: a cache keyed by the payload cost more per broadcast than framing again
 * the few entries a resume replays (docs/architecture.md, "No frame cache").
 */
export function wireFrameOf (payload: Buffer): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(0, 2)
    frame.writeUInt32BE(length, 6)
  }
  payload.copy(frame, headerLength)
  return frame
}
