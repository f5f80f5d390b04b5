/**
 * Passes a small request body through unchanged while keeping a copy, so the
 * request can be replayed once (after a 403 caused by clock skew). Only used for
 * bodies whose declared length is at most `RESIGN_BODY_LIMIT`.
 */
import { Transform, type TransformCallback } from 'node:stream'

export class BodyRecorder extends Transform {
  readonly #chunks: Buffer[] = []
  #length = 0

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#chunks.push(chunk)
    this.#length += chunk.length
    callback(null, chunk)
  }

  /** The whole body when exactly `expectedLength` bytes went through, else `undefined`. */
  complete (expectedLength: number): Buffer | undefined {
    return this.#length === expectedLength ? Buffer.concat(this.#chunks) : undefined
  }
}
