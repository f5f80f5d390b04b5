/**
 * Learns how far the upstream's clock is from the local one, from the `Date`
 * header of its answers, so a sidecar on a drifting host still signs timestamps
 * PAVE accepts.
 *
 * Each sample is `Date + 0.5 s` (the header has whole seconds) minus the local
 * midpoint of the exchange. The offset is the median of the last few samples:
 * smoothed against one odd answer, yet it follows a real jump after a few calls.
 * Samples are taken at most once a second (plus every 403), missing or
 * unparsable headers are ignored, and so are offsets beyond a sane bound.
 */

/** Samples kept for the median. */
export const CLOCK_SKEW_WINDOW = 5
/** At most one sample per this interval, except on a 403. */
export const CLOCK_SKEW_SAMPLE_INTERVAL_MS = 1_000
/** Offsets larger than this are absurd (a broken header or clock) and ignored. */
export const CLOCK_SKEW_MAX_OFFSET_MS = 24 * 3600 * 1000

export interface ClockSkewOptions {
  /** Local wall clock, epoch ms. Default `Date.now`. */
  readonly now?: () => number
  /** Log a warning when the offset's size crosses this. */
  readonly warnThresholdMs: number
  /** Called when the offset changes (metrics, logs). */
  readonly onChange?: (offsetMs: number, crossedThreshold: boolean) => void
}

export class ClockSkew {
  #offsetMs = 0
  #samples: number[] = []
  #lastSampleAt = -Infinity
  readonly #now: () => number
  readonly #warnThresholdMs: number
  readonly #onChange: ((offsetMs: number, crossedThreshold: boolean) => void) | undefined

  constructor (options: ClockSkewOptions) {
    this.#now = options.now ?? Date.now
    this.#warnThresholdMs = options.warnThresholdMs
    this.#onChange = options.onChange
  }

  /** The current estimate: add it to local time to get the upstream's. */
  get offsetMs (): number {
    return this.#offsetMs
  }

  /** Local time now (for callers measuring an exchange with the same clock). */
  now (): number {
    return this.#now()
  }

  /**
   * Records one exchange: `sentAt`/`receivedAt` are local times around it.
   * `force` takes the sample even inside the sampling interval (used on 403).
   */
  observe (dateHeader: string | undefined, sentAt: number, receivedAt: number, force = false): void {
    if (dateHeader === undefined || (!force && receivedAt - this.#lastSampleAt < CLOCK_SKEW_SAMPLE_INTERVAL_MS)) return
    const upstreamTime = Date.parse(dateHeader)
    if (Number.isNaN(upstreamTime)) return
    const sample = upstreamTime + 500 - (sentAt + receivedAt) / 2
    if (Math.abs(sample) > CLOCK_SKEW_MAX_OFFSET_MS) return
    this.#lastSampleAt = receivedAt
    this.#samples.push(sample)
    if (this.#samples.length > CLOCK_SKEW_WINDOW) this.#samples.shift()
    const previous = this.#offsetMs
    this.#offsetMs = Math.round(median(this.#samples))
    if (this.#offsetMs !== previous) {
      const crossed = (Math.abs(previous) > this.#warnThresholdMs) !== (Math.abs(this.#offsetMs) > this.#warnThresholdMs)
      this.#onChange?.(this.#offsetMs, crossed)
    }
  }

  /** Whether the offset's size is beyond the warning threshold. */
  get beyondThreshold (): boolean {
    return Math.abs(this.#offsetMs) > this.#warnThresholdMs
  }
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}
