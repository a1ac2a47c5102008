/**
 * A WebSocket client written by hand on a raw TCP socket, for the peers that the `ws` client will not play:
 * one that stops reading from its socket, or one that never answers the server's close frame.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { SOCKET_WAIT_MS, within } from './socket-waits.js'

/** One frame as the server sent it (server frames are never masked). */
export interface ServerFrame {
  readonly opcode: number
  readonly payload: Buffer
}

const OPCODE_TEXT = 0x1
const OPCODE_CLOSE = 0x8
const HEADER_END = '\r\n\r\n'

/** Encodes one final, masked client frame (RFC 6455 §5.2: every client frame is masked). */
function encodeClientFrame (opcode: number, payload: Buffer): Buffer {
  const length = payload.length
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8
  const header = Buffer.alloc(2 + lengthBytes + 4)
  header[0] = 0x80 | opcode
  if (lengthBytes === 0) {
    header[1] = 0x80 | length
  } else if (lengthBytes === 2) {
    header[1] = 0x80 | 126
    header.writeUInt16BE(length, 2)
  } else {
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(length), 2)
  }
  const mask = randomBytes(4)
  mask.copy(header, 2 + lengthBytes)
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i % 4]!
  return Buffer.concat([header, masked])
}

/** Splits the bytes received so far into complete server frames (a trailing partial frame is left out). */
function decodeServerFrames (bytes: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = []
  let offset = 0
  while (offset + 2 <= bytes.length) {
    const opcode = bytes[offset]! & 0x0f
    let length = bytes[offset + 1]! & 0x7f
    let start = offset + 2
    if (length === 126) {
      if (start + 2 > bytes.length) break
      length = bytes.readUInt16BE(start)
      start += 2
    } else if (length === 127) {
      if (start + 8 > bytes.length) break
      length = Number(bytes.readBigUInt64BE(start))
      start += 8
    }
    if (start + length > bytes.length) break
    frames.push({ opcode, payload: bytes.subarray(start, start + length) })
    offset = start + length
  }
  return frames
}

export class RawWebSocket {
  readonly socket: net.Socket
  /** Names the socket in the messages of bounded waits (helpers/socket-waits.ts). */
  readonly name: string
  /** Resolves when the TCP connection has closed, for whatever reason. */
  readonly closed: Promise<void>
  #received: Buffer[] = []
  #receivedBytes = 0

  private constructor (socket: net.Socket, afterHandshake: Buffer, name: string) {
    this.socket = socket
    this.name = name
    this.#keep(afterHandshake)
    socket.on('data', (chunk: Buffer) => this.#keep(chunk))
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  /**
   * Opens a WebSocket connection to `127.0.0.1:{port}{path}` by hand, the token in `?token=`.
   * Resolves once the server has answered `101 Switching Protocols`; rejects with its status line otherwise.
   */
  static open (port: number, path: string, token: string): Promise<RawWebSocket> {
    return within(new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1')
      let head = Buffer.alloc(0)
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf(HEADER_END)
        if (end === -1) return
        socket.off('data', onData)
        socket.off('error', reject)
        const statusLine = head.subarray(0, head.indexOf('\r\n')).toString()
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) {
          socket.destroy()
          reject(new Error(`upgrade refused: ${statusLine}`))
          return
        }
        socket.on('error', () => {}) // a cut connection is what some tests provoke
        resolve(new RawWebSocket(socket, head.subarray(end + HEADER_END.length), `a raw socket to 127.0.0.1:${port}${path}`))
      }
      socket.on('data', onData)
      socket.once('error', reject)
      socket.write([
        `GET ${path}?token=${encodeURIComponent(token)} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        '',
        ''
      ].join('\r\n'))
    }), SOCKET_WAIT_MS, `the upgrade of a raw socket to 127.0.0.1:${port}${path} to be answered`)
  }

  /** Sends one JSON message as a text frame. */
  send (message: unknown): void {
    this.socket.write(encodeClientFrame(OPCODE_TEXT, Buffer.from(JSON.stringify(message))))
  }

  /** Sends one masked frame with any opcode (such as a reserved one) and payload (such as invalid UTF-8). */
  sendFrame (opcode: number, payload: Buffer): void {
    this.socket.write(encodeClientFrame(opcode, payload))
  }

  /** Writes bytes as they are: for frames no correct client would send (unmasked, reserved bits set). */
  write (bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Every complete frame received so far. */
  frames (): ServerFrame[] {
    return decodeServerFrames(Buffer.concat(this.#received, this.#receivedBytes))
  }

  /** The JSON messages of the text frames received so far. */
  messages (): Array<Record<string, unknown>> {
    return this.frames().filter((frame) => frame.opcode === OPCODE_TEXT)
      .map((frame) => JSON.parse(frame.payload.toString()) as Record<string, unknown>)
  }

  /** The first message of `type` received (already, or within `timeout` ms); rejects if the connection ends first. */
  waitForMessage (type: string, timeout = 5000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const find = (): boolean => {
        const found = this.messages().find((message) => message.type === type)
        if (found) {
          stop()
          resolve(found)
        }
        return found !== undefined
      }
      const fail = (why: string): void => {
        stop()
        reject(new Error(`no '${type}' message: ${why}`))
      }
      const onData = (): void => { find() }
      const onClose = (): void => { if (!find()) fail('the connection ended') }
      const timer = setTimeout(() => fail(`none within ${timeout} ms`), timeout)
      const stop = (): void => {
        clearTimeout(timer)
        this.socket.off('data', onData)
        this.socket.off('close', onClose)
      }
      // Registered after the constructor's listener, so each chunk is kept before it is looked at.
      this.socket.on('data', onData)
      this.socket.once('close', onClose)
      find()
    })
  }

  /** The status codes of the close frames received so far (this client never answers them). */
  closeCodes (): number[] {
    return this.frames().filter((frame) => frame.opcode === OPCODE_CLOSE && frame.payload.length >= 2)
      .map((frame) => frame.payload.readUInt16BE(0))
  }

  /** Stops reading: the kernel buffers fill up and the server's writes start to queue. */
  stopReading (): void {
    this.socket.pause()
  }

  /** Reads again, discarding what arrives (a test that only wants to see the connection end). */
  drain (): void {
    this.socket.removeAllListeners('data')
    this.#received = []
    this.#receivedBytes = 0
    this.socket.on('data', () => {})
    this.socket.resume()
  }

  destroy (): void {
    this.socket.destroy()
  }

  #keep (chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#received.push(chunk)
    this.#receivedBytes += chunk.length
  }
}
