/**
 * The in-process broker, the plugin's default: one instance, history and read marks in memory. This file is the
 * folder's surface for the rest of `lib/`; everything else in `lib/in-process/` is internal to the broker.
 */
export { InProcessBroker } from './broker.js'
