/**
 * What the post form says when a post fails, in words: the browser's own "Failed to fetch" tells a user nothing.
 */
import { HttpError } from './http-error.js'

export function describePostFailure (err: unknown): string {
  if (err instanceof HttpError) {
    if (err.status === 401) return 'Not posted: you are signed out. Sign in again to post.'
    if (err.status === 403 || err.status === 404 || err.status === 409) return `Not posted: ${err.message}.`
    if (err.status >= 500) return `Not posted: the server failed (${err.status}). Your text is kept: try again.`
    return `Not posted: the server refused it (${err.message}).`
  }
  // fetch rejects (a TypeError) when no answer came: the server is down or restarting, or the network is.
  return 'Not posted: the server could not be reached. Your text is kept: post it again once reconnected.'
}
