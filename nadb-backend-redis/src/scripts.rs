//! The Lua scripts every multi-key operation runs as, so each is atomic on the space's slot.
//!
//! Write scripts declare every key they touch (Redis Cluster requires it, and a slot being
//! migrated answers `ASK`/`TRYAGAIN` for declared keys instead of silently running against a
//! half-moved slot). The client learns which tag sets a write touches by reading the old
//! metadata first; the apply script refuses (`stale`) when a record's tags changed in between,
//! and the client starts over.
//!
//! Read scripts declare the structures they read; the existence checks they make on record
//! keys only decide what to leave out or to prune, and every prune goes through the apply
//! script, which re-checks with declared keys. While a slot migrates, such an undeclared
//! access can fail with a "non local key" error; it is reported as temporary.
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
/// names; probe key, version and update time; check count and (key, expected version or '')
/// pairs; op count and ops: `p key value stored updated meta` (a put without expiry or tags),
/// `P key value stored updated meta px expires ntags tags…` (any put), `d key`, or `x key
/// version` (prune a record whose value the server expired). `meta` is the encoded metadata;
/// the script replaces its creation time when the put overwrites a live record.
/// Returns `ok`, `applied` (the probe shows this batch already landed: a retry after a lost
/// reply), `stale` (undeclared tags met: read again), or `{conflict, key}`.
///
/// Three phases: read everything, work out each record's final state, then write — every
/// addition before any removal, and each Redis key touched once per kind. No key is read or
/// written after a removal may have emptied it: while its slot migrates, Redis refuses a
/// script access to a key that no longer exists, and a script cannot be rolled back.
///
/// The common case (new keys, no tags, no expiry) costs per key one field of a bulk `HMGET`,
/// one pair of a bulk `MSET`, `HSET` and `ZADD`, and no Lua table of its own: a call from Lua
/// costs more than the command it runs, and arguments cost their conversion to Lua strings.
const APPLY: &str = r#"
local M, K, X, N, B = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local i = 2
local declared = {}
local nd = tonumber(ARGV[i]); i = i + 1
for _ = 1, nd do declared[ARGV[i]] = true; i = i + 1 end
local probe, probe_version, probe_updated = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
-- Every key the batch names, once, in first-named order.
local order, seen, n = {}, {}, 0
local nchecks = tonumber(ARGV[i]); i = i + 1
local checks = i
for _ = 1, nchecks do
  local key = ARGV[i]
  if not seen[key] then seen[key] = true; n = n + 1; order[n] = key end
  i = i + 2
end
-- The number of arguments of the op starting at ARGV index `at`.
local function oplen(at)
  local kind = ARGV[at]
  if kind == 'p' then return 6
  elseif kind == 'P' then return 9 + tonumber(ARGV[at + 8])
  elseif kind == 'x' then return 3
  else return 2 end
end
local nops = tonumber(ARGV[i]); i = i + 1
local ops = i
for _ = 1, nops do
  local key = ARGV[i + 1]
  if not seen[key] then seen[key] = true; n = n + 1; order[n] = key end
  i = i + oplen(i)
end
-- Their stored state: old[key] the fields of its metadata, live[key] whether its value exists.
local old, live = {}, {}
for s = 1, n, 1000 do
  local e = math.min(s + 999, n)
  local got = redis.call('HMGET', M, unpack(order, s, e))
  for j = s, e do
    local m = got[j - s + 1]
    if m then
      local key = order[j]
      old[key] = fields(m)
      live[key] = redis.call('EXISTS', P .. 'r:' .. key) == 1
    end
  end
end
-- The probe key is one the batch puts, so its metadata was just read.
if probe_version ~= '' then
  local f = old[probe]
  if f and f[1] == probe_version and f[5] == probe_updated then return 'applied' end
end
i = checks
for _ = 1, nchecks do
  local key, want = ARGV[i], ARGV[i + 1]; i = i + 2
  local found = false
  if live[key] then found = old[key][1] end
  if want == '' then
    if found then return { 'conflict', key } end
  elseif found ~= want then
    return { 'conflict', key }
  end
end
-- Field `at` (1-based, at > 1) of an encoded metadata string: start and end positions.
local function span(m, at)
  local a = 0
  for _ = 2, at do a = string.find(m, '\31', a + 1, true) end
  local b = string.find(m, '\31', a + 1, true)
  return a + 1, b - 1
end
-- The ops in order, on each record's state as the batch so far leaves it: final[key] is the
-- ARGV index of its last put, or false once deleted; keep[key] the creation time that put
-- inherits from the live record it overwrites.
local final, keep = {}, {}
i = ops
for _ = 1, nops do
  local kind, key, a = ARGV[i], ARGV[i + 1], i
  i = i + oplen(i)
  local m = old[key]
  if m then
    for t = 8, #m do if not declared[m[t]] then return 'stale' end end
  end
  local f = final[key]
  local exp, created = false, false
  if f == nil then
    if live[key] then exp, created = m[2], m[4] end
  elseif f then
    exp = ''
    if ARGV[f] == 'P' then exp = ARGV[f + 7] end
    created = keep[key]
    if not created then created = string.sub(ARGV[f + 5], span(ARGV[f + 5], 4)) end
  end
  if kind == 'p' or kind == 'P' then
    -- An overwrite of a record still live at this write keeps its creation time.
    if exp and (exp == '' or tonumber(exp) > tonumber(ARGV[a + 4])) then
      keep[key] = created
    else
      keep[key] = nil
    end
    final[key] = a
  elseif kind == 'd' then
    final[key] = false
  elseif f == nil and m and not live[key] and m[1] == ARGV[a + 2] then
    final[key] = false
  end
end
-- What changes, per Redis key. The lists every put adds to are appended through counters
-- (`#t` is a search); the rest, written only by some ops, through `push`.
local hset, mset, zadd_k, zadd_x, hdel, zrem_k, zrem_x, dels = {}, {}, {}, {}, {}, {}, {}, {}
local nh, nm, nk = 0, 0, 0
local setpx, tag_add, tag_rem, new_names = {}, {}, {}, {}
local function push(t, v) t[#t + 1] = v end
local function add(t, tag, key)
  if not t[tag] then t[tag] = {} end
  push(t[tag], key)
end
local delta = 0
for j = 1, n do
  local key = order[j]
  local f, m = final[key], old[key]
  if f ~= nil then
    local old_tags = false
    if m then
      delta = delta - tonumber(m[3])
      if #m > 7 then
        old_tags = {}
        for t = 8, #m do old_tags[m[t]] = true end
      end
    end
    if f then
      local meta, c = ARGV[f + 5], keep[key]
      if c then
        local s, e = span(meta, 4)
        meta = string.sub(meta, 1, s - 1) .. c .. string.sub(meta, e + 1)
      end
      hset[nh + 1] = key; hset[nh + 2] = meta; nh = nh + 2
      if not m then zadd_k[nk + 1] = '0'; zadd_k[nk + 2] = key; nk = nk + 2 end
      delta = delta + tonumber(ARGV[f + 3])
      local px, exp, ntags = '', '', 0
      if ARGV[f] == 'P' then px, exp, ntags = ARGV[f + 6], ARGV[f + 7], tonumber(ARGV[f + 8]) end
      if px == '' then
        mset[nm + 1] = P .. 'r:' .. key; mset[nm + 2] = ARGV[f + 2]; nm = nm + 2
      else
        push(setpx, f)
      end
      if exp ~= '' then
        push(zadd_x, exp); push(zadd_x, key)
      elseif m and m[2] ~= '' then
        push(zrem_x, key)
      end
      if ntags > 0 or old_tags then
        local new_tags = {}
        for t = f + 9, f + 8 + ntags do
          local tag = ARGV[t]
          new_tags[tag] = true
          if not (old_tags and old_tags[tag]) then add(tag_add, tag, key) end
        end
        if old_tags then
          for t in pairs(old_tags) do if not new_tags[t] then add(tag_rem, t, key) end end
        end
      end
    elseif m then
      if live[key] then push(dels, P .. 'r:' .. key) end
      push(hdel, key)
      push(zrem_k, key)
      if m[2] ~= '' then push(zrem_x, key) end
      if old_tags then
        for t in pairs(old_tags) do add(tag_rem, t, key) end
      end
    end
  end
end
-- Tags whose set the batch empties, decided before anything is written.
local emptied = {}
for tag, keys in pairs(tag_rem) do
  local added = 0
  if tag_add[tag] then added = #tag_add[tag] end
  if redis.call('SCARD', P .. 't:' .. tag) + added - #keys <= 0 then emptied[#emptied + 1] = tag end
end
local function bulk(cmd, key, args)
  for s = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, s, math.min(s + 999, #args)))
  end
end
-- Additions.
for s = 1, nm, 1000 do redis.call('MSET', unpack(mset, s, math.min(s + 999, nm))) end
for _, f in ipairs(setpx) do
  redis.call('SET', P .. 'r:' .. ARGV[f + 1], ARGV[f + 2], 'PX', ARGV[f + 6])
end
bulk('HSET', M, hset)
bulk('ZADD', K, zadd_k)
bulk('ZADD', X, zadd_x)
for tag, keys in pairs(tag_add) do
  bulk('SADD', P .. 't:' .. tag, keys)
  new_names[#new_names + 1] = tag
end
bulk('SADD', N, new_names)
if delta ~= 0 then redis.call('INCRBY', B, string.format('%.0f', delta)) end
-- Removals.
for s = 1, #dels, 1000 do redis.call('DEL', unpack(dels, s, math.min(s + 999, #dels))) end
bulk('HDEL', M, hdel)
bulk('ZREM', K, zrem_k)
bulk('ZREM', X, zrem_x)
for tag, keys in pairs(tag_rem) do bulk('SREM', P .. 't:' .. tag, keys) end
bulk('SREM', N, emptied)
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
/// for every member), at most 1000 per call (Lua unpacks only so many values; each later call
/// folds in the result so far), so `ZRANGEBYLEX` pages them in byte order. Returns
/// `{ {key, version…}, {dead key, version…} }`: records whose value the server already expired
/// are reported for pruning, not returned.
const QUERY: &str = r#"
local M, tmp = KEYS[1], KEYS[2]
local op = 'ZINTERSTORE'
if ARGV[2] == 'any' then op = 'ZUNIONSTORE' end
for s = 3, #KEYS, 1000 do
  local args = { tmp, 0 }
  if s > 3 then args[#args + 1] = tmp end
  for j = s, math.min(s + 999, #KEYS) do args[#args + 1] = KEYS[j] end
  args[2] = #args - 2
  args[#args + 1] = 'AGGREGATE'
  args[#args + 1] = 'MIN'
  redis.call(op, unpack(args))
end
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
