/** A token's unverified claims only choose the candidate callers; anything that is not a compact JWS with a JSON object payload chooses none. */
import t from 'tap'
import { unverifiedClaims } from '../../src/inbound/jose.js'

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('claims of a compact JWS', async (t) => {
  t.same(unverifiedClaims(`${part({ alg: 'ES256' })}.${part({ iss: 'i', sub: 's' })}.c2ln`), { iss: 'i', sub: 's' })
})

t.test('not a compact JWS with an object payload: undefined', async (t) => {
  for (const [name, token] of [
    ['two parts', `${part({})}.${part({ iss: 'i' })}`],
    ['five parts (a JWE)', 'a.b.c.d.e'],
    ['a payload that is not JSON', `${part({})}.${Buffer.from('{nope').toString('base64url')}.c2ln`],
    ['a null payload', `${part({})}.${part(null)}.c2ln`],
    ['an array payload', `${part({})}.${part(['iss'])}.c2ln`],
    ['a string payload', `${part({})}.${part('iss')}.c2ln`]
  ]) t.equal(unverifiedClaims(token as string), undefined, name as string)
})
