/** A refusal from the app's own HTTP API: its status, and the `message` of its JSON body. */
export class HttpError extends Error {
  constructor (readonly status: number, message: string) {
    super(message)
  }
}
