/**
 * The example app's own HTTP API (example/app.mjs), as the page calls it. Cookies travel by themselves (same origin).
 */
import type { Activity, Severity } from 'fastify-pov-realtime'
import { HttpError } from './http-error.js'

export interface Pov { id: string, name: string }

export interface NewActivity {
  id: string
  title: string
  message: string
  severity?: Severity
}

async function request<T> (method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const payload = await response.json().catch(() => ({})) as { message?: string }
  if (!response.ok) throw new HttpError(response.status, payload.message ?? response.statusText)
  return payload as T
}

/**
 * The signed-in user, or `undefined` when nobody is: the server answers `{ userId: null }` to a visitor without a
 * session cookie, and 401 (clearing it) to a cookie that no longer verifies.
 */
export async function fetchMe (): Promise<string | undefined> {
  try {
    return (await request<{ userId: string | null }>('GET', '/api/me')).userId ?? undefined
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) return undefined
    throw err
  }
}

export async function signIn (userName: string): Promise<string> {
  return (await request<{ userId: string }>('POST', '/api/demo/sign-in', { userName })).userId
}

export async function signOut (): Promise<void> {
  await request('POST', '/api/demo/sign-out', {})
}

export async function fetchPovs (): Promise<Pov[]> {
  return (await request<{ povs: Pov[] }>('GET', '/api/povs')).povs
}

/** The PoV's latest activities, oldest first. */
export async function fetchActivities (povId: string): Promise<Activity[]> {
  return (await request<{ activities: Activity[] }>('GET', `/api/povs/${encodeURIComponent(povId)}/activities`)).activities
}

/** Stores the activity and broadcasts it to the PoV's subscribers (this page included); `cursor` is the broadcast's. */
export async function postActivity (povId: string, activity: NewActivity): Promise<{ activity: Activity, cursor: string }> {
  return request<{ activity: Activity, cursor: string }>('POST', `/api/povs/${encodeURIComponent(povId)}/activities`, activity)
}

/** Leaves the PoV: the server ends this user's subscriptions of it (on every page) and refuses new ones. */
export async function leavePov (povId: string): Promise<void> {
  await request('POST', `/api/povs/${encodeURIComponent(povId)}/leave`, {})
}

/** Joins the PoV again; the page must then watch it anew. */
export async function joinPov (povId: string): Promise<void> {
  await request('POST', `/api/povs/${encodeURIComponent(povId)}/join`, {})
}
