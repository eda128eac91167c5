/**
 * The Redis store's Lua scripts (src/store/redis.ts): the commit, and the reads that must see one
 * consistent state. Each runs atomically in Redis; keys are named under the prefix in ARGV[1] (see
 * the key list in redis.ts).
 */

/**
 * ARGV[1] = prefix; then, optionally, the commit's place in its store's sequence ('Z', TOKEN, SEQ,
 * RESUME); then the changes, each an op letter and a fixed number of arguments.
 * The sequence lets a store have several commits in flight (RedisStore.pipeline): `P cseq:TOKEN` holds
 * the last SEQ applied. A commit already applied (SEQ not above it: a retry whose first reply was lost)
 * does nothing and returns -1. Otherwise a commit must follow the last one applied, or it is refused
 * before anything is written (it was issued behind a commit that failed), unless it is the store's
 * first commit after a failure (RESUME '1': the failed set again). The key lives 30 days after the
 * last commit; a store idle for longer has its next commit refused once, then applied as a retry.
 * SEQ is stored after the changes, so a script stopped halfway is applied again in full by the retry
 * (every change is an upsert or a delete by key).
 * Pass 1 checks every reference (enqueue, inflight, retain) before anything is written: Redis does
 * not roll a script back, so a set that refers to a message that is neither stored nor recorded
 * earlier in the set is refused whole, with the message id in the error. Pass 2 applies the changes
 * in order; messages whose count dropped to 0 (or that were written without a reference) are deleted
 * at the end. Returns the number of stored message bodies.
 */
export const COMMIT_LUA = `
local P = ARGV[1]
local n = #ARGV
local ARITY = { M = 2, S = 2, D = 1, B = 3, U = 2, E = 4, Q = 2, F = 4, G = 2, ['2'] = 2, ['3'] = 2, R = 2, X = 1, W = 2, V = 1,
  Y = 2, C = 2, I = 2, J = 2, L = 3, K = 2, O = 2, H = 2 }
local first = 2
local cseq, seq = nil, nil
if ARGV[2] == 'Z' then
  cseq, seq = P .. 'cseq:' .. ARGV[3], tonumber(ARGV[4])
  if seq == nil or n < 5 then return redis.error_reply('MIDGE malformed commit sequence number') end
  local got = redis.call('GET', cseq) or '0'
  local cur = tonumber(got)
  if cur >= seq then return -1 end
  if ARGV[5] ~= '1' and cur ~= seq - 1 then
    return redis.error_reply('MIDGE commit ' .. ARGV[4] .. ' not applied: an earlier commit failed (the last applied is ' .. got .. ')')
  end
  first = 6
end
local known = {}
local i = first
while i <= n do
  local op = ARGV[i]
  local a = ARITY[op]
  if a == nil or i + a > n then return redis.error_reply('MIDGE malformed change set at argument ' .. i) end
  local id = nil
  if op == 'M' then known[ARGV[i + 1]] = true
  elseif op == 'E' or op == 'F' then id = ARGV[i + 3]
  elseif op == 'R' then id = ARGV[i + 2] end
  if id ~= nil and not known[id] then
    if redis.call('EXISTS', P .. 'm:' .. id) == 0 then
      return redis.error_reply('MIDGE message ' .. id .. ' is referenced but not stored')
    end
    known[id] = true
  end
  i = i + 1 + a
end

local meta = P .. 'meta'
local touched = {}
local function ref(id, d)
  local k = P .. 'm:' .. id
  if redis.call('EXISTS', k) == 0 then return end
  redis.call('HINCRBY', k, 'r', d)
  touched[id] = true
end
local function raise(field, v)
  local cur = redis.call('HGET', meta, field)
  if not cur or tonumber(v) > tonumber(cur) then redis.call('HSET', meta, field, v) end
end
local function second(s) return string.match(s, '^[^|]*|([^|]*)|') end

i = first
while i <= n do
  local op = ARGV[i]
  local x, y, z, w = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if op == 'M' then
    local k = P .. 'm:' .. x
    if redis.call('EXISTS', k) == 0 then
      redis.call('HSET', k, 'd', y, 'r', 0)
      redis.call('HINCRBY', meta, 'messages', 1)
      raise('lastMessageId', x)
    end
    touched[x] = true
  elseif op == 'S' then
    redis.call('HSET', P .. 'sess', x, y)
    redis.call('ZADD', P .. 'sessz', 0, x)
  elseif op == 'D' then
    redis.call('HDEL', P .. 'sess', x)
    redis.call('ZREM', P .. 'sessz', x)
    local fk = P .. 'subf:' .. x
    for _, key in ipairs(redis.call('SMEMBERS', fk)) do
      redis.call('HDEL', P .. 'subs', key)
      redis.call('ZREM', P .. 'subsz', key)
    end
    redis.call('DEL', fk)
    local qk = P .. 'q:' .. x
    for _, m in ipairs(redis.call('ZRANGE', qk, 0, -1)) do ref(second(m), -1) end
    local ik = P .. 'f:' .. x
    for _, v in ipairs(redis.call('HVALS', ik)) do ref(second(v), -1) end
    redis.call('DEL', qk, ik, P .. 'q2:' .. x)
  elseif op == 'B' then
    redis.call('HSET', P .. 'subs', y, z)
    redis.call('ZADD', P .. 'subsz', 0, y)
    redis.call('SADD', P .. 'subf:' .. x, y)
  elseif op == 'U' then
    redis.call('HDEL', P .. 'subs', y)
    redis.call('ZREM', P .. 'subsz', y)
    redis.call('SREM', P .. 'subf:' .. x, y)
  elseif op == 'E' then
    local qk = P .. 'q:' .. x
    local old = redis.call('ZRANGEBYSCORE', qk, y, y)
    ref(z, 1)
    for _, m in ipairs(old) do
      redis.call('ZREM', qk, m)
      ref(second(m), -1)
    end
    redis.call('ZADD', qk, y, w)
    raise('lastSeq', y)
  elseif op == 'Q' then
    local qk = P .. 'q:' .. x
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', qk, y, y)) do
      redis.call('ZREM', qk, m)
      ref(second(m), -1)
    end
  elseif op == 'F' then
    local ik = P .. 'f:' .. x
    local old = redis.call('HGET', ik, y)
    local ord
    if old then ord = string.match(old, '^([^|]*)|')
    else ord = string.format('%.0f', redis.call('HINCRBY', meta, 'ord', 1)) end
    ref(z, 1)
    redis.call('HSET', ik, y, ord .. '|' .. z .. '|' .. w)
    if old then ref(second(old), -1) end
  elseif op == 'G' then
    local ik = P .. 'f:' .. x
    local old = redis.call('HGET', ik, y)
    if old then
      redis.call('HDEL', ik, y)
      ref(second(old), -1)
    end
  elseif op == '2' then
    redis.call('SADD', P .. 'q2:' .. x, y)
  elseif op == '3' then
    redis.call('SREM', P .. 'q2:' .. x, y)
  elseif op == 'R' then
    local old = redis.call('HGET', P .. 'r', x)
    ref(y, 1)
    redis.call('HSET', P .. 'r', x, y)
    redis.call('ZADD', P .. 'rz', 0, x)
    if old then ref(old, -1) end
  elseif op == 'X' then
    local old = redis.call('HGET', P .. 'r', x)
    if old then
      redis.call('HDEL', P .. 'r', x)
      redis.call('ZREM', P .. 'rz', x)
      ref(old, -1)
    end
  elseif op == 'W' then
    redis.call('HSET', P .. 'wills', x, y)
  elseif op == 'V' then
    redis.call('HDEL', P .. 'wills', x)
  -- the cluster's ops (src/cluster/redis-bus.ts): forwards, inbox cursor, subscription index, live wills, owners
  elseif op == 'Y' then
    redis.call('XADD', P .. 'in:' .. x, '*', 'd', y)
  elseif op == 'C' then
    redis.call('SET', P .. 'cur:' .. x, y)
    redis.call('XTRIM', P .. 'in:' .. x, 'MINID', y)
  elseif op == 'I' then
    if redis.call('SADD', P .. 'idx:' .. x, y) == 1 then redis.call('PUBLISH', P .. 'bus', 'i+' .. x .. '\\n' .. y) end
  elseif op == 'J' then
    if redis.call('SREM', P .. 'idx:' .. x, y) == 1 then redis.call('PUBLISH', P .. 'bus', 'i-' .. x .. '\\n' .. y) end
  elseif op == 'L' then
    redis.call('HSET', P .. 'lwill:' .. x, y, z)
  elseif op == 'K' then
    redis.call('HDEL', P .. 'lwill:' .. x, y)
  elseif op == 'O' then
    redis.call('HSET', P .. 'owner', x, y)
  elseif op == 'H' then
    if redis.call('HGET', P .. 'owner', x) == y then redis.call('HDEL', P .. 'owner', x) end
  end
  i = i + 1 + ARITY[op]
end

for id in pairs(touched) do
  local k = P .. 'm:' .. id
  local r = redis.call('HGET', k, 'r')
  if r and tonumber(r) <= 0 then
    redis.call('DEL', k)
    redis.call('HINCRBY', meta, 'messages', -1)
  end
end
if cseq ~= nil then redis.call('SET', cseq, ARGV[4], 'EX', 2592000) end
return tonumber(redis.call('HGET', meta, 'messages') or '0')
`;

/** ARGV: prefix, client id. One consistent read of a client's window and the bodies it refers to. */
export const WINDOW_LUA = `
local P, c = ARGV[1], ARGV[2]
local f = redis.call('HGETALL', P .. 'f:' .. c)
local q = redis.call('ZRANGE', P .. 'q:' .. c, 0, -1)
local q2 = redis.call('SMEMBERS', P .. 'q2:' .. c)
local seen, bodies = {}, {}
local function want(s)
  local id = string.match(s, '^[^|]*|([^|]*)|')
  if id and not seen[id] then
    seen[id] = true
    local d = redis.call('HGET', P .. 'm:' .. id, 'd')
    if d then
      bodies[#bodies + 1] = id
      bodies[#bodies + 1] = d
    end
  end
end
for j = 2, #f, 2 do want(f[j]) end
for _, m in ipairs(q) do want(m) end
return { f, q, q2, bodies }
`;

/**
 * ARGV: prefix, table ('sess' | 'subs' | 'r'), first page ('1' or '0'), cursor (the last member of
 * the previous page), count. Returns { members, values }, and for 'r' (values: message ids) also the
 * message bodies (null when the message is gone). One page is one consistent read.
 */
export const PAGE_LUA = `
local P, t, first, after, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local min = '-'
if first ~= '1' then min = '(' .. after end
local members = redis.call('ZRANGEBYLEX', P .. t .. 'z', min, '+', 'LIMIT', 0, count)
if #members == 0 then return { members, {}, {} } end
local vals = redis.call('HMGET', P .. t, unpack(members))
if t ~= 'r' then return { members, vals } end
local bodies = {}
for j = 1, #vals do
  if vals[j] then bodies[j] = redis.call('HGET', P .. 'm:' .. vals[j], 'd') else bodies[j] = false end
end
return { members, vals, bodies }
`;

/** ARGV: prefix, 'MessageId' | 'Seq', count. Returns the first id of a block no other caller gets. */
export const RESERVE_LUA = `
local meta = ARGV[1] .. 'meta'
local last = tonumber(redis.call('HGET', meta, 'last' .. ARGV[2]) or '0')
local res = tonumber(redis.call('HGET', meta, 'reserved' .. ARGV[2]) or '0')
if res > last then last = res end
redis.call('HSET', meta, 'reserved' .. ARGV[2], string.format('%.0f', last + tonumber(ARGV[3])))
return string.format('%.0f', last + 1)
`;
