/**
 * Keeps WebSocket upgrades from reaching a server for a while, HTTP requests passing as usual: what a client sees
 * when its socket cannot get through (a proxy dropping upgrades, a network that resets them), while the page and its
 * API still load. The plugin's own upgrade handling is set aside, not changed, and put back on `open()`.
 */
import type { Server } from 'node:http'

export interface UpgradeGate {
  /** From now on every upgrade's connection is reset at once. */
  close (): void
  /** Upgrades reach the server's own handlers again. */
  open (): void
  /** Upgrades refused while closed. */
  readonly refused: number
}

export function upgradeGate (server: Server): UpgradeGate {
  let held: Array<(...args: unknown[]) => void> | undefined
  let refused = 0
  const refuse = (_request: unknown, socket: { destroy (): void }) => {
    refused++
    socket.destroy()
  }
  return {
    close () {
      if (held) return
      held = server.listeners('upgrade') as Array<(...args: unknown[]) => void>
      server.removeAllListeners('upgrade')
      server.on('upgrade', refuse)
    },
    open () {
      if (!held) return
      server.removeListener('upgrade', refuse)
      for (const listener of held) server.on('upgrade', listener)
      held = undefined
    },
    get refused () {
      return refused
    }
  }
}
