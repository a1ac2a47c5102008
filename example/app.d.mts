// Types of app.mjs, for the TypeScript end-to-end test (test/e2e/example.test.ts).
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { ActivityStore } from './activity-store.mjs'

export type { ActivityStore }

export interface ExampleAppOptions {
  secret: string
  store?: ActivityStore
  logger?: FastifyServerOptions['logger']
}

export interface ExampleServerOptions extends ExampleAppOptions {
  port?: number
  host?: string
}

export interface ExampleServer {
  app: FastifyInstance
  store: ActivityStore
  url: string
  port: number
  close (): Promise<void>
}

export function buildExampleApp (options: ExampleAppOptions): Promise<FastifyInstance>
export function startExampleServer (options: ExampleServerOptions): Promise<ExampleServer>
