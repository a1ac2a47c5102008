// Type test: an app narrows ActivityType and ActivityAction by declaration merging; a typo then fails to compile.
// Compiled on its own (this folder's tsconfig.json) because the augmentation is global to a program, and against the
// built package (by its name, as an app imports it), so it checks what is shipped.
import Fastify from 'fastify'
import povRealtime, { type Activity } from 'fastify-pov-realtime'

declare module 'fastify-pov-realtime' {
  interface ActivityTypes { note: true, status: true }
  interface ActivityActions { created: true, failed: true }
}

const app = Fastify()
await app.register(povRealtime, { secret: 's'.repeat(32) })

void app.broadcastActivity({ id: 'a', type: 'note', action: 'created', povId: 'p', userId: 'u', title: 't', message: 'm' })
// @ts-expect-error 'typo' is not a registered activity type
void app.broadcastActivity({ id: 'a', type: 'typo', action: 'created', povId: 'p', userId: 'u', title: 't', message: 'm' })
// @ts-expect-error 'deleted' is not a registered action
void app.broadcastActivity({ id: 'a', type: 'note', action: 'deleted', povId: 'p', userId: 'u', title: 't', message: 'm' })

const type: 'note' | 'status' = ({} as Activity).type
void type
