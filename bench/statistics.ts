/**
 * Medians and ranges over trials, and ratios taken trial by trial: on a shared, noisy machine a ratio between
 * targets measured moments apart is worth more than any absolute figure.
 */
import type { Measurement } from './measure.js'

export interface Spread {
  median: number
  min: number
  max: number
}

/** Median and range of the finite values, or `undefined` when there are none. */
export function spread (values: readonly number[]): Spread | undefined {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (finite.length === 0) return undefined
  const middle = finite.length >> 1
  const median = finite.length % 2 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2
  return { median, min: finite[0]!, max: finite[finite.length - 1]! }
}

export type Metric = (measurement: Measurement) => number | undefined

/** The metric over every trial of `target`. */
export function spreadOf (measurements: readonly Measurement[], target: string, metric: Metric): Spread | undefined {
  return spread(measurements.filter((m) => m.target === target).map((m) => metric(m) ?? NaN))
}

/** `target ÷ baseline` for each trial both ran in, then their median and range. */
export function ratioOf (measurements: readonly Measurement[], target: string, baseline: string, metric: Metric): Spread | undefined {
  const ratios: number[] = []
  for (const measurement of measurements) {
    if (measurement.target !== target) continue
    const paired = measurements.find((m) => m.target === baseline && m.trial === measurement.trial)
    const value = metric(measurement)
    const base = paired && metric(paired)
    if (value !== undefined && base) ratios.push(value / base)
  }
  return spread(ratios)
}
