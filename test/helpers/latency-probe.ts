/**
 * A subscriber that keeps no message: for each activity it records only how long it took to arrive, from the
 * `sentAt` (`performance.now()` of this process) that the test stamped in its metadata when publishing it. Being
 * light, it measures latency without adding memory of its own to the process being measured.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { socketToken } from './server.js'
import { nextEvent, SOCKET_WAIT_MS, within } from './socket-waits.js'

/** The metadata a probed activity carries. */
export interface ProbeStamp { sentAt: number, seq: number }

export class LatencyProbe {
  readonly ws: WebSocket
  /** Delivery latency in ms, by the activity's `seq`. */
  readonly latencies: number[] = []
  /** Activities received. */
  received = 0

  private constructor (ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string, data?: { metadata?: ProbeStamp } }
      const stamp = message.type === 'activity' ? message.data?.metadata : undefined
      if (!stamp) return
      this.received++
      this.latencies[stamp.seq] = performance.now() - stamp.sentAt
    })
  }

  /** Connects to `wsUrl` as `userId` and subscribes to `povId`. */
  static async open (wsUrl: string, userId: string, povId: string): Promise<LatencyProbe> {
    const token = socketToken({ userId, sub: userId, email: `${userId}@example.com` })
    const ws = new WebSocket(wsUrl, ['pov-realtime.v1', `bearer.${token}`])
    ws.on('error', () => {})
    await nextEvent(ws, 'open', `${userId}'s probe socket`)
    const subscribed = within(new Promise<void>((resolve) => {
      const onMessage = (data: WebSocket.RawData): void => {
        if ((JSON.parse(data.toString()) as { type: string }).type !== 'subscribed') return
        ws.off('message', onMessage)
        resolve()
      }
      ws.on('message', onMessage)
    }), SOCKET_WAIT_MS, `${userId}'s probe socket to be subscribed to ${povId}`)
    ws.send(JSON.stringify({ type: 'subscribe', povId }))
    await subscribed
    return new LatencyProbe(ws)
  }

  send (message: unknown): void {
    this.ws.send(JSON.stringify(message))
  }

  close (): void {
    this.ws.terminate()
  }
}

/** The `p`-th percentile (0 to 1) of `values`, by the nearest-rank method. */
export function percentile (values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN
}
