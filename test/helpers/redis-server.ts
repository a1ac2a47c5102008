/**
 * Redis for tests. `sharedRedis` gives a test its own key prefix on the shared Redis at 127.0.0.1:6379 and deletes
 * that prefix's keys afterwards (the shared server is never flushed or stopped). `startRedisServer` runs a private
 * `redis-server` on a free loopback port, for the tests that kill, hang, flush or restart Redis; it is stopped by pid.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { killProcess, spawnRedisServer, untilRedisAnswers } from '../../bench/redis-servers.js'
import { freePort } from './free-port.js'
import type { Teardown } from './server.js'

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379'

/** A key prefix of this test's own, e.g. `test-3f9a0c1b:`. */
export function uniqueKeyPrefix (): string {
  return `test-${randomBytes(4).toString('hex')}:`
}

/** Deletes every key under `keyPrefix`. */
export async function deleteKeys (redis: Redis, keyPrefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000)
    if (keys.length > 0) await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

export interface SharedRedis {
  readonly url: string
  readonly keyPrefix: string
  /** A client of the test's own (closed at teardown), for looking into Redis. */
  readonly client: Redis
}

/** The shared Redis with a fresh key prefix; the prefix's keys are deleted at teardown. */
export async function sharedRedis (t: Teardown): Promise<SharedRedis> {
  const keyPrefix = uniqueKeyPrefix()
  const client = new Redis(SHARED_REDIS_URL)
  t.teardown(async () => {
    await deleteKeys(client, keyPrefix)
    client.disconnect()
  })
  return { url: SHARED_REDIS_URL, keyPrefix, client }
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** The running server's pid (undefined while stopped). */
  readonly pid: number | undefined
  /** Kills the server at once (SIGKILL), as a crash would; resolves when it has exited. */
  kill (): Promise<void>
  /** Starts a new, empty server on the same port. */
  restart (): Promise<void>
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause (): void
  /** Thaws a paused server (SIGCONT). */
  resume (): void
}

/** Starts a private `redis-server` (no persistence) on a free loopback port; it is killed at teardown. */
export async function startRedisServer (t: Teardown): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined

  async function launch (): Promise<void> {
    const process = spawnRedisServer(port)
    child = process
    process.once('exit', () => { if (child === process) child = undefined })
    await untilRedisAnswers(port, 10_000, process)
  }

  async function kill (): Promise<void> {
    await killProcess(child)
  }

  await launch()
  t.teardown(kill)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    kill,
    async restart () {
      await kill()
      await launch()
    },
    pause () { child?.kill('SIGSTOP') },
    resume () { child?.kill('SIGCONT') }
  }
}
