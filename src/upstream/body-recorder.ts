/**
 * Passes a small request body through unchanged while keeping a copy, so the
 * request can be replayed once (after a 403 caused by clock skew). Only used for
 * bodies whose declared length is at most `RESIGN_BODY_LIMIT`.
 */
import { Transform, type TransformCallback } from 'node:stream'

export class BodyRecorder extends Transform {
  readonly #chunks: Buffer[] = []
  readonly #expectedLength: number
  #length = 0

  constructor (expectedLength: number) {
    super()
    this.#expectedLength = expectedLength
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#chunks.push(chunk)
    this.#length += chunk.length
    callback(null, chunk)
  }

  /** The whole body once all of the declared length went through, else `undefined`. */
  complete (): Buffer | undefined {
    return this.#length === this.#expectedLength ? Buffer.concat(this.#chunks) : undefined
  }
}
