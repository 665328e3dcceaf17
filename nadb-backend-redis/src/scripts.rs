//! The Lua scripts every multi-key operation runs as, so each is atomic on the space's slot.
//!
//! Write scripts declare every key they touch (Redis Cluster requires it, and a slot being
//! migrated answers `ASK`/`TRYAGAIN` for declared keys instead of silently running against a
//! half-moved slot). The client learns which tag sets a write touches by reading the old
//! metadata first; the apply script refuses (`stale`) when a record's tags changed in between,
//! and the client starts over.
//!
//! Read scripts declare the structures they read; the existence checks they make on record
//! keys are hints that only decide what to leave out or to prune, and every prune goes through
//! the apply script, which re-checks with declared keys.
//!
//! No script compares strings in Lua: Lua compares with the server's locale collation, not
//! byte order. Ordering is left to sorted sets (`ZRANGEBYLEX` is byte order).

use std::sync::LazyLock;

use redis::Script;

/// Helpers shared by the scripts. `ARGV[1]` is always the space prefix `nadb:{DB:NS}:`.
const PRELUDE: &str = r#"
local P = ARGV[1]
local function fields(m)
  local t, start = {}, 1
  while true do
    local j = string.find(m, '\31', start, true)
    if not j then t[#t + 1] = string.sub(m, start); return t end
    t[#t + 1] = string.sub(m, start, j - 1)
    start = j + 1
  end
end
"#;

/// Applies a batch. KEYS: meta hash, key index, expiry index, tag names, byte counter, then
/// every record key and tag set the batch touches. ARGV: prefix; declared tag count and
/// names; probe key and version; check count and (key, expected version or '') pairs; op
/// count and ops: `p key value px version expires stored created updated codec value_len
/// ntags tags…`, `d key`, or `x key version` (prune a record whose value the server expired).
/// Returns `ok`, `applied` (the probe shows this batch already landed: a retry after a lost
/// reply), `stale` (undeclared tags met: read again), or `{conflict, key}`.
const APPLY: &str = r#"
local M, K, X, N, B = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local delta = 0
local function unlink(key, f)
  for t = 8, #f do
    local tk = P .. 't:' .. f[t]
    redis.call('SREM', tk, key)
    if redis.call('SCARD', tk) == 0 then redis.call('SREM', N, f[t]) end
  end
  delta = delta - tonumber(f[3])
  redis.call('HDEL', M, key)
  redis.call('ZREM', K, key)
  redis.call('ZREM', X, key)
end
local i = 2
local declared = {}
local nd = tonumber(ARGV[i]); i = i + 1
for _ = 1, nd do declared[ARGV[i]] = true; i = i + 1 end
local probe, probe_version = ARGV[i], ARGV[i + 1]; i = i + 2
if probe_version ~= '' then
  local m = redis.call('HGET', M, probe)
  if m and fields(m)[1] == probe_version then return 'applied' end
end
local nchecks = tonumber(ARGV[i]); i = i + 1
local checks_at = i
i = i + 2 * nchecks
local nops = tonumber(ARGV[i]); i = i + 1
local ops = {}
for o = 1, nops do
  local kind, key = ARGV[i], ARGV[i + 1]
  local m = redis.call('HGET', M, key)
  -- Reused below unless an earlier op of the batch wrote the key.
  ops[o] = { kind, key, i + 2, m }
  if kind == 'p' then i = i + 12 + tonumber(ARGV[i + 11])
  elseif kind == 'x' then i = i + 3
  else i = i + 2 end
  if m then
    local f = fields(m)
    for t = 8, #f do if not declared[f[t]] then return 'stale' end end
  end
end
for c = 0, nchecks - 1 do
  local key, want = ARGV[checks_at + 2 * c], ARGV[checks_at + 2 * c + 1]
  local m = redis.call('HGET', M, key)
  local found = false
  if m and redis.call('EXISTS', P .. 'r:' .. key) == 1 then found = fields(m)[1] end
  if want == '' then
    if found then return { 'conflict', key } end
  elseif found ~= want then
    return { 'conflict', key }
  end
end
local first = {}
for o = 1, nops do
  local kind, key, a = ops[o][1], ops[o][2], ops[o][3]
  local rkey = P .. 'r:' .. key
  local old = ops[o][4]
  if first[key] then old = redis.call('HGET', M, key) end
  first[key] = true
  if kind == 'x' then
    if old and fields(old)[1] == ARGV[a] and redis.call('EXISTS', rkey) == 0 then
      unlink(key, fields(old))
    end
  else
    local kept = nil
    if old then
      local f = fields(old)
      if redis.call('EXISTS', rkey) == 1 then kept = f end
      unlink(key, f)
    end
    if kind == 'p' then
      local value, px, updated = ARGV[a], ARGV[a + 1], ARGV[a + 6]
      local parts = { ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], updated, ARGV[a + 7], ARGV[a + 8] }
      -- An overwrite of a record still live at this write keeps its creation time.
      if kept and (kept[2] == '' or tonumber(kept[2]) > tonumber(updated)) then parts[4] = kept[4] end
      if px == '' then redis.call('SET', rkey, value) else redis.call('SET', rkey, value, 'PX', px) end
      for t = 1, tonumber(ARGV[a + 9]) do
        local tag = ARGV[a + 9 + t]
        parts[7 + t] = tag
        redis.call('SADD', P .. 't:' .. tag, key)
        redis.call('SADD', N, tag)
      end
      redis.call('HSET', M, key, table.concat(parts, '\31'))
      redis.call('ZADD', K, 0, key)
      if parts[2] ~= '' then redis.call('ZADD', X, parts[2], key) end
      delta = delta + tonumber(parts[3])
    else
      redis.call('DEL', rkey)
    end
  end
end
if delta ~= 0 then redis.call('INCRBY', B, string.format('%.0f', delta)) end
return 'ok'
"#;

/// Reads records. KEYS: meta hash, then the record key of each ARGV[i+1]. ARGV: prefix,
/// `full` or `meta`, keys. Returns per key: metadata and value (`full`) or metadata (`meta`),
/// nil for a key without both.
const GET: &str = r#"
local full = ARGV[2] == 'full'
local out = {}
for j = 2, #KEYS do
  local m = redis.call('HGET', KEYS[1], ARGV[j + 1])
  local v = false
  if m then
    if full then v = redis.call('GET', KEYS[j]) else v = redis.call('EXISTS', KEYS[j]) == 1 end
  end
  if not (m and v) then m = false; v = false end
  out[#out + 1] = m
  if full then out[#out + 1] = v end
end
return out
"#;

/// Ordered paging. KEYS: key index, meta hash. ARGV: prefix, min and max lex bounds, limit.
/// Returns key, metadata pairs.
const SCAN: &str = r#"
local min, max, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, n = {}, 0
while n < limit do
  local page = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', 0, math.min(limit - n, 512))
  if #page == 0 then break end
  for _, key in ipairs(page) do
    local m = redis.call('HGET', KEYS[2], key)
    if m and redis.call('EXISTS', P .. 'r:' .. key) == 1 then
      out[#out + 1] = key; out[#out + 1] = m; n = n + 1
    end
  end
  min = '(' .. page[#page]
end
return out
"#;

/// Tag query. KEYS: meta hash, scratch sorted set, the tag sets. ARGV: prefix, `all`/`any`,
/// now, after ('' for none), limit. The sets are combined into the scratch sorted set (score 1
/// for every member) so `ZRANGEBYLEX` pages them in byte order. Returns `{ {key, version…},
/// {dead key, version…} }`: records whose value the server already expired are reported for
/// pruning, not returned.
const QUERY: &str = r#"
local M, tmp = KEYS[1], KEYS[2]
local args = { tmp, #KEYS - 2 }
for j = 3, #KEYS do args[#args + 1] = KEYS[j] end
args[#args + 1] = 'AGGREGATE'
args[#args + 1] = 'MIN'
local op = 'ZINTERSTORE'
if ARGV[2] == 'any' then op = 'ZUNIONSTORE' end
redis.call(op, unpack(args))
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[5])
local min = '-'
if ARGV[4] ~= '' then min = '(' .. ARGV[4] end
local out, dead, n = {}, {}, 0
while n < limit do
  local page = redis.call('ZRANGEBYLEX', tmp, min, '+', 'LIMIT', 0, math.min(limit - n, 512))
  if #page == 0 then break end
  for _, key in ipairs(page) do
    local m = redis.call('HGET', M, key)
    if m then
      local f = fields(m)
      if f[2] == '' or tonumber(f[2]) > now then
        if redis.call('EXISTS', P .. 'r:' .. key) == 1 then
          out[#out + 1] = key; out[#out + 1] = f[1]; n = n + 1
        else
          dead[#dead + 1] = key; dead[#dead + 1] = f[1]
        end
      end
    end
  end
  min = '(' .. page[#page]
end
redis.call('DEL', tmp)
return { out, dead }
"#;

/// Live tag counts. KEYS: meta hash, tag names, expiry index. ARGV: prefix, now. Returns tag,
/// count pairs for tags with a live key.
const TAG_COUNTS: &str = r#"
local counts, names = {}, redis.call('SMEMBERS', KEYS[2])
for _, tag in ipairs(names) do counts[tag] = redis.call('SCARD', P .. 't:' .. tag) end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])) do
  local m = redis.call('HGET', KEYS[1], key)
  if m then
    local f = fields(m)
    for t = 8, #f do if counts[f[t]] then counts[f[t]] = counts[f[t]] - 1 end end
  end
end
local out = {}
for _, tag in ipairs(names) do
  if counts[tag] > 0 then out[#out + 1] = tag; out[#out + 1] = counts[tag] end
end
return out
"#;

/// Live keys and bytes. KEYS: meta hash, key index, expiry index, byte counter. ARGV: prefix,
/// now. Returns `{keys, bytes}`.
const COUNT: &str = r#"
local keys = redis.call('ZCARD', KEYS[2])
local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])) do
  local m = redis.call('HGET', KEYS[1], key)
  if m then keys = keys - 1; bytes = bytes - tonumber(fields(m)[3]) end
end
return { keys, bytes }
"#;

/// Expired records. KEYS: meta hash, expiry index. ARGV: prefix, now, limit. Returns key,
/// version, `1` (value still stored) or `0` (the server expired it: prune) triples.
const EXPIRED: &str = r#"
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])) do
  local m = redis.call('HGET', KEYS[1], key)
  if m then
    out[#out + 1] = key
    out[#out + 1] = fields(m)[1]
    out[#out + 1] = tostring(redis.call('EXISTS', P .. 'r:' .. key))
  end
end
return out
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

pub(crate) static APPLY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(APPLY));
pub(crate) static GET_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(GET));
pub(crate) static SCAN_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SCAN));
pub(crate) static QUERY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(QUERY));
pub(crate) static TAG_COUNTS_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TAG_COUNTS));
pub(crate) static COUNT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(COUNT));
pub(crate) static EXPIRED_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(EXPIRED));
