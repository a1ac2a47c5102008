/**
 * Plain `ws` with a topic index and one serialization per broadcast: the practical limit of this stack, and the
 * yardstick of every ratio. The `variant` selects how the broadcast is written (see {@link PlainWsVariant}).
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { cursorMaker, type ActivityMessage } from '../activity.js'
import type { BenchServer, PlainWsVariant } from './bench-server.js'

interface Peer {
  readonly ws: WebSocket
  /** The connection's TCP socket, from the upgrade request (public API: `request.socket`). */
  readonly socket: Socket
  /** The tick it was last written in (see {@link TickCorker}). */
  writtenInTick: number
  corked: boolean
}

/** A text frame with FIN set and no mask, built once: the bytes a server sends for `payload`. */
function textFrame (payload: Buffer): Buffer {
  const header = payload.length < 126 ? 2 : payload.length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + payload.length)
  frame[0] = 0x81
  if (header === 2) {
    frame[1] = payload.length
  } else if (header === 4) {
    frame[1] = 126
    frame.writeUInt16BE(payload.length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  payload.copy(frame, header)
  return frame
}

/**
 * Corks a socket written to a second time in one tick, and uncorks every such socket at the end of the tick: the
 * first frame leaves at once (no added latency, no cost when one frame per tick is the rule), the rest together.
 */
class TickCorker {
  #tick = 1
  #scheduled = false
  readonly #corked: Peer[] = []
  readonly #endTick = () => {
    for (const peer of this.#corked) {
      peer.corked = false
      peer.socket.uncork()
    }
    this.#corked.length = 0
    this.#scheduled = false
    this.#tick++
  }

  beforeWrite (peer: Peer): void {
    if (!this.#scheduled) {
      this.#scheduled = true
      process.nextTick(this.#endTick)
    }
    if (peer.writtenInTick !== this.#tick) {
      peer.writtenInTick = this.#tick
    } else if (!peer.corked) {
      peer.corked = true
      peer.socket.cork()
      this.#corked.push(peer)
    }
  }
}

export async function startPlainWsServer (variant: PlainWsVariant): Promise<BenchServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  const byPov = new Map<string, Set<Peer>>()
  const cursor = cursorMaker()
  const corker = variant.endsWith('-corked') ? new TickCorker() : undefined
  let seq = 0

  wss.on('connection', (ws, request) => {
    const peer: Peer = { ws, socket: request.socket as Socket, writtenInTick: 0, corked: false }
    const watched = new Set<string>()
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string, povId: string }
      if (message.type !== 'subscribe') return
      let subscribers = byPov.get(message.povId)
      if (!subscribers) byPov.set(message.povId, subscribers = new Set())
      subscribers.add(peer)
      watched.add(message.povId)
      ws.send(JSON.stringify({ type: 'subscribed', povId: message.povId }))
    })
    ws.on('close', () => {
      for (const povId of watched) byPov.get(povId)?.delete(peer)
    })
  })

  return {
    port: (wss.address() as { port: number }).port,
    publish (activity) {
      const subscribers = byPov.get(activity.povId)
      if (!subscribers) return
      const message: ActivityMessage = { type: 'activity', cursor: cursor(++seq), data: activity }
      const json = JSON.stringify(message)
      if (variant === 'string') {
        for (const { ws } of subscribers) ws.send(json)
        return
      }
      const payload = Buffer.from(json)
      if (variant === 'buffer' || variant === 'buffer-corked') {
        for (const peer of subscribers) {
          corker?.beforeWrite(peer)
          peer.ws.send(payload, { binary: false })
        }
        return
      }
      const frame = textFrame(payload)
      for (const peer of subscribers) {
        // ws would refuse too: no data frame after the close frame.
        if (peer.ws.readyState !== WebSocket.OPEN) continue
        corker?.beforeWrite(peer)
        peer.socket.write(frame)
      }
    },
    close: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate()
      wss.close(() => resolve())
    })
  }
}
