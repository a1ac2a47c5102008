/** The wire protocol's types and constants, shared by the server (`fastify-pov-realtime`) and the client (`/hooks`). */
export * from './wire-constants.js'
export type * from './activity.js'
export type * from './messages.js'
