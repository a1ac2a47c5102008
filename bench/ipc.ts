/**
 * Request/answer over the IPC channel of a forked child: the orchestrator drives the target servers and the load
 * generator with it. Every call has a deadline and every child is stopped by its own pid, so no step of the
 * benchmark can hang or leave a process behind.
 */
import { fork, type ChildProcess } from 'node:child_process'

interface Request { id: number, command: string, args: unknown }
interface Answer { id: number, ok: boolean, result?: unknown, error?: string }
interface Ready { ready: true, info: unknown }

type Handler = (args: never) => unknown
export type Handlers = Record<string, Handler>

/** The child side: answers the parent's requests with `handlers`, then tells it it is ready with `info`. */
export function serveRequests (handlers: Handlers, info: unknown): void {
  if (!process.send) throw new Error('a benchmark process must be started with an IPC channel (child_process.fork)')
  process.on('message', (message: Request) => {
    const handler = handlers[message.command]
    const answer = (reply: Answer) => { if (process.connected) process.send!(reply) }
    if (!handler) {
      answer({ id: message.id, ok: false, error: `unknown command ${message.command}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.args as never))
      .then(
        (result) => answer({ id: message.id, ok: true, result }),
        (err: unknown) => answer({ id: message.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) })
      )
  })
  // The orchestrator going away (or closing the channel) ends this process: nothing of the benchmark outlives it.
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: true, info } satisfies Ready)
}

export interface ForkOptions {
  /** Node flags of the child (`--expose-gc`, `--cpu-prof`, …). */
  execArgv?: string[]
  /** How long the child may take to say it is ready. Default 30 s. */
  readyTimeout?: number
  /** For messages: which process this is. */
  name: string
}

/** The parent side of one benchmark child process. */
export class ChildHandle<Info = unknown> {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }>()
  readonly #name: string
  #nextId = 1
  #exited = false
  #stderr = ''
  info!: Info

  private constructor (child: ChildProcess, name: string) {
    this.#child = child
    this.#name = name
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)
    })
    child.on('message', (message: Answer | Ready) => {
      if ('ready' in message) return
      const pending = this.#pending.get(message.id)
      if (!pending) return
      this.#pending.delete(message.id)
      clearTimeout(pending.timer)
      if (message.ok) pending.resolve(message.result)
      else pending.reject(new Error(`${this.#name}: ${message.error}`))
    })
    child.on('exit', (code, signal) => {
      this.#exited = true
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer)
        pending.reject(new Error(`${this.#name} exited (${signal ?? code}) during a request${this.#stderrTail()}`))
      }
      this.#pending.clear()
    })
  }

  /** Forks `entry` with `args` and waits for it to be ready. */
  static async start<Info> (entry: string, args: string[], options: ForkOptions): Promise<ChildHandle<Info>> {
    const child = fork(entry, args, { execArgv: options.execArgv ?? [], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
    const handle = new ChildHandle<Info>(child, options.name)
    const timeout = options.readyTimeout ?? 30_000
    handle.info = await new Promise<Info>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${options.name} was not ready within ${timeout} ms${handle.#stderrTail()}`))
      }, timeout)
      child.on('message', (message: Answer | Ready) => {
        if ('ready' in message) {
          clearTimeout(timer)
          resolve(message.info as Info)
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${options.name} exited (${signal ?? code}) before it was ready${handle.#stderrTail()}`))
      })
    }).catch(async (err: unknown) => {
      await handle.stop()
      throw err
    })
    return handle
  }

  get pid (): number | undefined {
    return this.#child.pid
  }

  /** Sends `command` and resolves with the child's answer; rejects after `timeout` ms. */
  call<T> (command: string, args: unknown = {}, timeout = 60_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.#name} has exited${this.#stderrTail()}`))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.#name}: '${command}' got no answer within ${timeout} ms`))
      }, timeout)
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer })
      this.#child.send({ id, command, args } satisfies Request)
    })
  }

  /** Closes the channel (the child exits by itself), then kills it by pid if it has not gone within `grace` ms. */
  async stop (grace = 5000): Promise<void> {
    if (this.#exited) return
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()))
    if (this.#child.connected) this.#child.disconnect()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), grace) })
    if (await Promise.race([exited, late]) === 'late') {
      this.#child.kill('SIGKILL')
      await exited
    }
    clearTimeout(timer)
  }

  #stderrTail (): string {
    return this.#stderr ? `; stderr: ${this.#stderr.trim().split('\n').slice(-8).join('\n')}` : ''
  }
}
