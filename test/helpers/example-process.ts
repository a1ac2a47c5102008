/**
 * `npm start`'s server (example/server.mjs) as a child process, the way a user runs it: its own environment (no
 * `JWT_SECRET` unless given), its plain start-up lines read from stdout, and stopped with Ctrl-C (SIGINT). The
 * restart test starts it twice on one port and data folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../../example/server.mjs', import.meta.url))
/** Bundling the page and starting: a few seconds alone, more on a busy 2-core machine. */
const START_TIMEOUT = 60_000
/** The line server.mjs prints once it listens. */
const OPEN_LINE = /^Open (http:\/\/\S+) in a normal and a private window/m

export interface ExampleProcess {
  readonly url: string
  /** Everything the process wrote to stdout so far. */
  readonly stdout: () => string
  /** Ctrl-C: resolves with the exit code (`null` if it had to be killed after 15 s). */
  stop (): Promise<number | null>
}

export interface ExampleRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a user's shell without `JWT_SECRET` (and without the test runner's), plus `env`. */
function environment (env: Record<string, string>): NodeJS.ProcessEnv {
  const { JWT_SECRET: _secret, ...rest } = process.env
  return { ...rest, ...env }
}

function spawnServer (env: Record<string, string>): { child: ChildProcess, out: string[], err: string[] } {
  const child = spawn(process.execPath, [SERVER], { env: environment(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  const err: string[] = []
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => out.push(chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk))
  return { child, out, err }
}

function exited (child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/**
 * Starts example/server.mjs with `env` and resolves once it printed the URL to open; rejects with its output if it
 * exits first or takes longer than a minute.
 */
export async function startExampleProcess (env: Record<string, string>): Promise<ExampleProcess> {
  const { child, out, err } = spawnServer(env)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`example/server.mjs did not say where to open within ${START_TIMEOUT} ms:\n${out.join('')}${err.join('')}`))
    }, START_TIMEOUT)
    child.stdout!.on('data', () => {
      const match = OPEN_LINE.exec(out.join(''))
      if (!match) return
      clearTimeout(timer)
      resolve(match[1]!)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`example/server.mjs exited (${code}) before listening:\n${out.join('')}${err.join('')}`))
    })
  })
  return {
    url,
    stdout: () => out.join(''),
    async stop () {
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const code = await exited(child)
      clearTimeout(timer)
      return code
    }
  }
}

/** Runs example/server.mjs with `env` until it exits by itself (it is expected to fail); kills it after a minute. */
export async function runExampleProcessToExit (env: Record<string, string>): Promise<ExampleRun> {
  const { child, out, err } = spawnServer(env)
  const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT)
  const code = await exited(child)
  clearTimeout(timer)
  return { code, stdout: out.join(''), stderr: err.join('') }
}
