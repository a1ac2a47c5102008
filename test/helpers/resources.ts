/**
 * What a test needs to see that nothing is left behind: garbage collection on demand (no flag on tap's command
 * line), the memory left after it, and the timers and TCP handles created while watching that are still alive.
 */
import { createHook } from 'node:async_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** `global.gc`, made available in this process only (no flag on tap's command line needed), or undefined. */
export function exposeGc (): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  } catch {
    return undefined
  }
}

/** The heap in use after a few full collections. */
export function heapAfterGc (gc: () => void): number {
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}

/** The heap and the memory outside it (Buffers, which hold what a socket has queued) after a few full collections. */
export function memoryAfterGc (gc: () => void): number {
  for (let i = 0; i < 4; i++) gc()
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

/** How many of each kind of resource keep the event loop alive (`Timeout`, `TCPSocketWrap`, …). */
export function activeResources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** Records the timers and TCP handles created while enabled that are still alive (unref'd timers included). */
export function trackResources () {
  const live = new Map<number, string>()
  const hook = createHook({
    init (asyncId, type) {
      if (type === 'Timeout' || type === 'TCPWRAP' || type === 'TCPSERVERWRAP') live.set(asyncId, type)
    },
    destroy (asyncId) {
      live.delete(asyncId)
    }
  })
  return {
    live,
    enable: () => hook.enable(),
    disable: () => hook.disable()
  }
}
