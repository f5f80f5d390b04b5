/**
 * The GCRA of `gcra.ts` as one Lua script, so a decision is atomic in Redis (no
 * read-then-write race between replicas) and costs one round trip.
 *
 * Time is Redis's own (`TIME`), never the replicas': the replicas' clocks need not
 * agree, only the one Redis has. (Since Redis 5 scripts replicate their effects, so
 * reading `TIME` before a write is allowed; older servers need `replicate_commands`.)
 *
 * KEYS[1] is the account's pause key, KEYS[2..] the budgets; ARGV holds each
 * budget's interval and limit in µs. Replies:
 * - `{0}`: admitted, every budget spent;
 * - `{i, waitMs}`: refused by budget i (1-based), nothing spent;
 * - `{-1, waitMs}`: the account is paused (PAVE asked to wait).
 * A key expires once its TAT is in the past (it then means "full burst"), so a
 * FLUSHALL or an eviction only ever gives a budget back, never locks anyone out.
 */
export const DECIDE_SCRIPT = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then return {-1, paused} end
local n = #KEYS - 1
local tats = {}
local worst = 0
local refused = 0
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i + 1]) or '0') or 0
  if tat < now then tat = now end
  local nxt = tat + interval
  local wait = nxt - now - limit
  if wait > worst then
    worst = wait
    refused = i
  end
  tats[i] = nxt
end
if refused > 0 then return {refused, math.ceil(worst / 1000)} end
for i = 1, n do
  redis.call('SET', KEYS[i + 1], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
end
return {0}
`

/** Pauses an account: KEYS[1] the pause key, ARGV[1] ms. Never shortens a longer pause. Replies 1 when a pause began. */
export const PAUSE_SCRIPT = `
local left = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if left < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
if left > 0 then return 0 end
return 1
`
