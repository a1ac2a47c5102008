/**
 * The frames ws refuses on its own (too big, not UTF-8, broken framing): it closes the socket with the RFC 6455 code
 * and reports the error. Both the session (to count the close) and the plugin's socket error handler (not to log the
 * client's fault as a server error) tell those errors apart from real socket errors here.
 */
import { CloseCode } from '../../types/wire-constants.js'

/** The close codes ws sends for the frame errors it reports (RFC 6455 §7.4.1); other `WS_ERR_*` codes: 1002. */
const wsErrorCloseCodes: Readonly<Record<string, CloseCode>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD
}

/** The close code ws sent for a frame it refused (the client's fault), or undefined for any other socket error. */
export function closeCodeOfFrameError (err: Error & { code?: string }): CloseCode | undefined {
  if (!err.code?.startsWith('WS_ERR_')) return undefined
  return wsErrorCloseCodes[err.code] ?? CloseCode.PROTOCOL_ERROR
}
