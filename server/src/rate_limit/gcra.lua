-- Warden's GCRA in Redis: the same steps as server/src/rate_limit/gcra.rs,
-- run atomically inside Redis, so instances sharing a Redis never race on
-- a read-modify-write. Loaded once and called by its SHA1 (EVALSHA).
--
-- Times are whole microseconds on Redis's own clock (TIME), so the clocks
-- of the instances don't matter. Lua numbers are doubles: every value here
-- stays below 2^53 (windows are capped at 2^52 µs by the caller), and the
-- two divisions and the one product that could leave that range are done
-- exactly (idiv, carry_over), so the results are the integers gcra.rs gets.
--
-- A key's cell is one 32-byte string, its four numbers (tat, updated,
-- requests, window) packed as doubles, that expires (SET … PX) when its
-- bucket is full again: an idle key holds no memory.
--
-- ARGV[1] is the operation, ARGV[2] the time in µs ("" for Redis's clock;
-- tests pass one to drive both implementations alike).
--   limit   KEYS[i] with quota ARGV[2i+1] requests, ARGV[2i+2] window, in
--           order (a key named twice sees its first update; each key is
--           read and written once per call)
--                            -> {allowed_1, used_1, allowed_2, used_2, ...}
--   peek    the same, without counting
--   reserve KEYS[1] key id, KEYS[2] address, KEYS[3] key id's pass;
--           ARGV[3], ARGV[4] the failure quota, ARGV[5], ARGV[6] the pass
--           quota  -> {granted (0, 1 by the key id, 2 by the pass), used, quota (1 or 2)}
--   refund  KEYS[i] with quota ARGV[2i+1], ARGV[2i+2]  -> {number of keys}

local floor, min, max = math.floor, math.min, math.max
local call = redis.call
local pack, unpack = struct.pack, struct.unpack

-- floor(a / c), exactly, for integers 0 <= a <= 2^52, 1 <= c <= 2^52: the
-- quotient of two doubles is within one of the true one.
local function idiv(a, c)
  local q = floor(a / c)
  if q * c > a then
    q = q - 1
  elseif (q + 1) * c <= a then
    q = q + 1
  end
  return q
end

-- min(floor(used * to / from), cap): the budget `used` at interval `from`
-- as budget at interval `to`. The product may pass 2^53, so it is done by
-- shift and add over the bits of `to`, keeping quotient and remainder.
local function carry_over(used, from, to, cap)
  if from < 1 then from = 1 end
  if to == 0 then return 0 end
  local q0 = idiv(used, from)
  if q0 > idiv(cap, to) then return cap end
  local r = used - q0 * from
  local bits = {}
  local x = to
  while x > 0 do
    local b = x % 2
    bits[#bits + 1] = b
    x = (x - b) / 2
  end
  -- invariant: q * from + rem = r * (the bits of `to` seen so far), rem < from
  local q, rem = 0, 0
  for i = #bits, 1, -1 do
    q = q * 2
    if rem >= from - rem then
      rem = rem - (from - rem)
      q = q + 1
    else
      rem = rem + rem
    end
    if bits[i] == 1 then
      if rem >= from - r then
        rem = rem - (from - r)
        q = q + 1
      else
        rem = rem + r
      end
    end
  end
  local total = q0 * to + q
  if total > cap then return cap end
  return total
end

-- The key's cell (tat, updated, requests, window), or nil.
local function load(key)
  local raw = call('GET', key)
  if not raw or #raw ~= 32 then return nil end
  local tat, updated, requests, window = unpack('<dddd', raw)
  return tat, updated, requests, window
end

local given_clock = ARGV[2] ~= ''

local function store(key, tat, updated, requests, window, now)
  if tat <= now then
    call('DEL', key)
    return
  end
  local ttl_ms = idiv(tat - now + 999, 1000)
  -- The expiry runs on Redis's clock: under a caller's clock (tests), keep
  -- the key an hour longer so it can't vanish between two calls.
  if given_clock then ttl_ms = ttl_ms + 3600000 end
  call('SET', key, pack('<dddd', tat, updated, requests, window), 'PX', ttl_ms)
end

-- gcra.rs `step` for a key whose cell is (tat, updated, c_requests,
-- c_window) or (nil): returns allowed, used, the cell to keep (tat,
-- updated) and whether it differs from the stored one.
local function step(tat, updated, c_requests, c_window, requests, window, now)
  local t = idiv(window, requests)
  local changed = false
  if not tat or tat <= now then
    tat, updated, changed = now, now, true
  elseif c_requests ~= requests or c_window ~= window then
    updated = min(updated, now)
    local from = idiv(c_window, max(c_requests, 1))
    tat = updated + carry_over(max(tat - updated, 0), from, t, window)
    changed = true
  end
  local used = min(max(tat - now, 0), window)
  if used > window - t then
    return false, used, tat, updated, changed
  end
  used = used + t
  return true, used, now + used, now, true
end

local op = ARGV[1]
local now
if given_clock then
  now = tonumber(ARGV[2])
else
  local time = call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

if op == 'limit' or op == 'peek' then
  -- A key named several times (a busy key's requests in one batch) is read
  -- once, stepped in memory and written once: a cell whose tat has passed
  -- steps exactly as an absent one, which is what `store` makes of it.
  local cells, out = {}, {}
  for i, key in ipairs(KEYS) do
    local requests, window = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
    local cell = cells[key]
    if not cell then
      -- (A call's several results only spread as the last argument.)
      cell = { load(key) }
      cells[key] = cell
    end
    local allowed, used, tat, updated, changed = step(cell[1], cell[2], cell[3], cell[4], requests, window, now)
    if op == 'limit' and changed then
      cell[1], cell[2], cell[3], cell[4], cell.dirty = tat, updated, requests, window, true
    end
    out[2 * i - 1] = allowed and 1 or 0
    out[2 * i] = used
  end
  for key, cell in pairs(cells) do
    if cell.dirty then store(key, cell[1], cell[2], cell[3], cell[4], now) end
  end
  return out
elseif op == 'reserve' then
  local requests, window = tonumber(ARGV[3]), tonumber(ARGV[4])
  local pass_requests, pass_window = tonumber(ARGV[5]), tonumber(ARGV[6])
  local a_tat, a_updated, a_requests, a_window = load(KEYS[2])
  local clean = not a_tat or a_tat <= now
  local a_ok, a_used, a_new, a_upd = step(a_tat, a_updated, a_requests, a_window, requests, window, now)
  if not a_ok then return { 0, a_used, 1 } end
  local i_tat, i_updated, i_requests, i_window = load(KEYS[1])
  local i_ok, i_used, i_new, i_upd = step(i_tat, i_updated, i_requests, i_window, requests, window, now)
  if i_ok then
    store(KEYS[1], i_new, i_upd, requests, window, now)
    store(KEYS[2], a_new, a_upd, requests, window, now)
    return { 1, 0, 0 }
  end
  if not clean then return { 0, i_used, 1 } end
  local p_tat, p_updated, p_requests, p_window = load(KEYS[3])
  local p_ok, p_used, p_new, p_upd = step(p_tat, p_updated, p_requests, p_window, pass_requests, pass_window, now)
  if not p_ok then return { 0, p_used, 2 } end
  store(KEYS[3], p_new, p_upd, pass_requests, pass_window, now)
  store(KEYS[2], a_new, a_upd, requests, window, now)
  return { 2, 0, 0 }
elseif op == 'refund' then
  for i, key in ipairs(KEYS) do
    local requests, window = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
    local tat, updated, c_requests, c_window = load(key)
    if tat and tat > now then
      store(key, tat - idiv(window, requests), updated, c_requests, c_window, now)
    end
  end
  return { #KEYS }
end
return redis.error_reply('unknown operation')
