/**
 * A real OTLP/HTTP trace receiver for tests: a node:http server on 127.0.0.1:0
 * that takes `POST /v1/traces` in both encodings — `application/json` and
 * `application/x-protobuf` (decoded here from the wire format of
 * opentelemetry/proto/collector/trace/v1) — and keeps every span, the raw bodies
 * (for secret scans) and the request headers.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export type AttributeValue = string | number | boolean | null
export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** Empty for a root span. */
  parentSpanId: string
  traceState: string
  name: string
  /** OTLP's enum: 1 internal, 2 server, 3 client. */
  kind: number
  startNs: bigint
  endNs: bigint
  attributes: Record<string, AttributeValue>
  events: Array<{ name: string, attributes: Record<string, AttributeValue> }>
  status: { code: number, message: string }
  resource: Record<string, AttributeValue>
}

export interface OtlpReceiver {
  url: string
  spans: ReceivedSpan[]
  /** Every body as received, decoded as latin1 (protobuf strings appear in it as sent). */
  bodies: string[]
  requests: Array<{ headers: IncomingHttpHeaders, contentType: string }>
  /** Waits until at least `count` spans arrived. */
  waitForSpans: (count: number, timeoutMs?: number) => Promise<ReceivedSpan[]>
  close: () => Promise<void>
}

export interface ReceiverOptions {
  /** Answer every export with this status (default 200). */
  status?: number
  /** Never answer (a collector that hangs). */
  hang?: boolean
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const

export async function startOtlpReceiver (options: ReceiverOptions = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const bodies: string[] = []
  const requests: OtlpReceiver['requests'] = []
  const waiters: Array<() => void> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (options.hang === true) return
      const body = Buffer.concat(chunks)
      const contentType = req.headers['content-type'] ?? ''
      requests.push({ headers: req.headers, contentType })
      bodies.push(body.toString('latin1'))
      if (req.method === 'POST' && req.url === '/v1/traces') {
        spans.push(...(contentType.includes('json') ? decodeJson(JSON.parse(body.toString('utf8')) as JsonRequest) : decodeProtobuf(body)))
        for (const wake of waiters.splice(0)) wake()
      }
      const status = options.status ?? 200
      res.writeHead(status, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' }).end(contentType.includes('json') ? '{}' : '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    requests,
    async waitForSpans (count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (spans.length < count) {
        if (Date.now() > deadline) throw new Error(`${spans.length} spans received, ${count} expected`)
        await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 100) })
      }
      return spans
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

// ---- OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) ----

interface JsonAnyValue { stringValue?: string, boolValue?: boolean, intValue?: string | number, doubleValue?: number }
interface JsonKeyValue { key: string, value: JsonAnyValue }
interface JsonSpan {
  traceId: string, spanId: string, parentSpanId?: string, traceState?: string, name: string, kind: number
  startTimeUnixNano: string | number, endTimeUnixNano: string | number, attributes?: JsonKeyValue[]
  events?: Array<{ name: string, attributes?: JsonKeyValue[] }>, status?: { code?: number, message?: string }
}
interface JsonRequest { resourceSpans: Array<{ resource?: { attributes?: JsonKeyValue[] }, scopeSpans: Array<{ spans?: JsonSpan[] }> }> }

function jsonValue (value: JsonAnyValue): AttributeValue {
  if (value.stringValue !== undefined) return value.stringValue
  if (value.boolValue !== undefined) return value.boolValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return value.doubleValue
  return null
}

function jsonAttributes (list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]))
}

export function decodeJson (request: JsonRequest): ReceivedSpan[] {
  return request.resourceSpans.flatMap((rs) => {
    const resource = jsonAttributes(rs.resource?.attributes)
    return rs.scopeSpans.flatMap((ss) => (ss.spans ?? []).map((s): ReceivedSpan => ({
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId ?? '',
      traceState: s.traceState ?? '',
      name: s.name,
      kind: s.kind,
      startNs: BigInt(s.startTimeUnixNano),
      endNs: BigInt(s.endTimeUnixNano),
      attributes: jsonAttributes(s.attributes),
      events: (s.events ?? []).map((e) => ({ name: e.name, attributes: jsonAttributes(e.attributes) })),
      status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
      resource
    })))
  })
}

// ---- OTLP/protobuf: the wire format, read field by field ----

type Field = { wire: 0, value: bigint } | { wire: 1 | 5, value: Buffer } | { wire: 2, value: Buffer }

/** The fields of one protobuf message, by number, in order. */
function fields (buffer: Buffer): Map<number, Field[]> {
  const out = new Map<number, Field[]>()
  let at = 0
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      const byte = buffer[at++] as number
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
    }
  }
  while (at < buffer.length) {
    const tag = Number(varint())
    const number = tag >>> 3
    const wire = tag & 7
    let field: Field
    if (wire === 0) field = { wire: 0, value: varint() }
    else if (wire === 1) { field = { wire: 1, value: buffer.subarray(at, at + 8) }; at += 8 } else if (wire === 5) { field = { wire: 5, value: buffer.subarray(at, at + 4) }; at += 4 } else if (wire === 2) {
      const length = Number(varint())
      field = { wire: 2, value: buffer.subarray(at, at + length) }
      at += length
    } else throw new Error(`unexpected wire type ${wire}`)
    const list = out.get(number) ?? []
    list.push(field)
    out.set(number, list)
  }
  return out
}

const bytesOf = (f: Map<number, Field[]>, n: number): Buffer[] => (f.get(n) ?? []).map((x) => x.value as Buffer)
const stringOf = (f: Map<number, Field[]>, n: number): string => bytesOf(f, n)[0]?.toString('utf8') ?? ''
const hexOf = (f: Map<number, Field[]>, n: number): string => bytesOf(f, n)[0]?.toString('hex') ?? ''
const varintOf = (f: Map<number, Field[]>, n: number): bigint => ((f.get(n)?.[0]?.value as bigint | undefined) ?? 0n)
const fixed64Of = (f: Map<number, Field[]>, n: number): bigint => bytesOf(f, n)[0]?.readBigUInt64LE() ?? 0n

function anyValue (buffer: Buffer): AttributeValue {
  const f = fields(buffer)
  if (f.has(1)) return stringOf(f, 1)
  if (f.has(2)) return varintOf(f, 2) === 1n
  if (f.has(3)) return Number(BigInt.asIntN(64, varintOf(f, 3)))
  if (f.has(4)) return (bytesOf(f, 4)[0] as Buffer).readDoubleLE()
  return null
}

function protoAttributes (list: Buffer[]): Record<string, AttributeValue> {
  return Object.fromEntries(list.map((kv) => {
    const f = fields(kv)
    const value = bytesOf(f, 2)[0]
    return [stringOf(f, 1), value !== undefined ? anyValue(value) : null]
  }))
}

export function decodeProtobuf (body: Buffer): ReceivedSpan[] {
  return bytesOf(fields(body), 1).flatMap((resourceSpans) => {
    const rs = fields(resourceSpans)
    const resourceBytes = bytesOf(rs, 1)[0]
    const resource = resourceBytes !== undefined ? protoAttributes(bytesOf(fields(resourceBytes), 1)) : {}
    return bytesOf(rs, 2).flatMap((scopeSpans) => bytesOf(fields(scopeSpans), 2).map((spanBytes): ReceivedSpan => {
      const s = fields(spanBytes)
      const statusBytes = bytesOf(s, 15)[0]
      const status = statusBytes !== undefined ? fields(statusBytes) : new Map<number, Field[]>()
      return {
        traceId: hexOf(s, 1),
        spanId: hexOf(s, 2),
        traceState: stringOf(s, 3),
        parentSpanId: hexOf(s, 4),
        name: stringOf(s, 5),
        kind: Number(varintOf(s, 6)),
        startNs: fixed64Of(s, 7),
        endNs: fixed64Of(s, 8),
        attributes: protoAttributes(bytesOf(s, 9)),
        events: bytesOf(s, 11).map((e) => {
          const ef = fields(e)
          return { name: stringOf(ef, 2), attributes: protoAttributes(bytesOf(ef, 3)) }
        }),
        status: { code: Number(varintOf(status, 3)), message: stringOf(status, 2) },
        resource
      }
    }))
  })
}
