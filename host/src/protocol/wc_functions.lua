#!lua name=wc
--[[
The exactly-once core of wc-host. Every write a worker makes to a job goes
through one of these functions, so each is one atomic unit. Two commit
modes share one gate, the done-set of task ids:
* reduce (default): `wc_commit_task_result` stores a task's counts as one
  blob; the coordinator builds the sorted set from the blobs at the end;
* live: `atomic_increment_and_acknowledge` applies ZINCRBYs as tasks land.

Rules kept by every function:
* validate all arguments before the first write (a function that fails
  after writing keeps its writes: Redis has no rollback);
* the done-set, not XACK, decides whether counts apply: XACK returns 0
  without error when the group was lost in a restore, and a late worker's
  XACK still succeeds after its task was stolen;
* iterate ARGV, never unpack() it (unpack fails above ~8000 items).
--]]

local FIXED = 10 -- ARGV entries before the key/count pairs of a commit

-- Fields of the job's meta hash written here (protocol/keys.rs names the
-- same in `field`; a test checks that the two agree).
local FIELD = {
  tasks_done = 'tasks_done', rows = 'rows', bytes = 'bytes', short_rows = 'short_rows',
  invalid_utf8_rows = 'invalid_utf8_rows', decoded_bytes = 'decoded_bytes', tokens = 'tokens', pairs = 'pairs',
  duplicates = 'duplicates', duplicate_parts = 'duplicate_parts', retries = 'retries',
  dead = 'dead', state = 'state',
}
local FINISHED = 'finished' -- the value of FIELD.state once counts are published

-- The per-task input statistics every commit carries, in ARGV order.
local STATS = {FIELD.rows, FIELD.bytes, FIELD.short_rows, FIELD.invalid_utf8_rows, FIELD.decoded_bytes}

local function numbers_at(args, from, to)
  for i = from, to do
    if not tonumber(args[i]) then
      return false
    end
  end
  return true
end

local function add_stats(meta, args, from)
  for k, name in ipairs(STATS) do
    redis.call('HINCRBY', meta, name, args[from + k - 1])
  end
end

local function ack_and_delete(stream, group, entry)
  -- pcall: a restore may have lost the stream or the group; that must not
  -- fail a commit whose counts are already applied.
  redis.pcall('XACK', stream, group, entry)
  redis.pcall('XDEL', stream, entry)
end

--[[
Applies one part of a task's counts, exactly once.

KEYS: stream, counts (zset), done (set of task ids), parts (set of applied
      part ids), partcount (hash task id -> parts applied), meta (hash)
ARGV: group, entry id, task id, part index, part total,
      rows, bytes, short rows, invalid-utf8 rows, decoded bytes, then key, count, ...

A task whose counts are too many for one bounded call is sent in parts; the
parts are a deterministic function of the task (keys sorted, fixed size), so
part ids are stable across workers and attempts. The task is done, acked and
its stats added when its last part lands.

Returns 1 when counts were applied, 0 for a duplicate (nothing changed but
the duplicate counter and the ack).
--]]
local function atomic_increment_and_acknowledge(keys, args)
  local stream, counts, done, parts_set, partcount, meta = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  local group, entry, task = args[1], args[2], args[3]
  local part, parts = tonumber(args[4]), tonumber(args[5])
  local n = #args
  if not part or not parts or part < 0 or part >= parts or (n - FIXED) % 2 ~= 0 then
    return redis.error_reply('ERR wc: malformed commit for task ' .. tostring(task))
  end
  if not numbers_at(args, 6, 10) then
    return redis.error_reply('ERR wc: malformed stats for task ' .. task)
  end
  for i = FIXED + 2, n, 2 do
    local c = tonumber(args[i])
    if not c or c <= 0 or c ~= math.floor(c) then
      return redis.error_reply('ERR wc: bad count ' .. tostring(args[i]) .. ' in task ' .. task)
    end
  end

  -- The gate. A finished task never counts again; a part never twice.
  if redis.call('SISMEMBER', done, task) == 1 then
    ack_and_delete(stream, group, entry)
    redis.call('HINCRBY', meta, FIELD.duplicates, 1)
    return 0
  end
  if redis.call('SADD', parts_set, task .. '#' .. part .. '/' .. parts) == 0 then
    redis.call('HINCRBY', meta, FIELD.duplicate_parts, 1)
    return 0
  end

  local tokens = 0
  for i = FIXED + 1, n, 2 do
    redis.call('ZINCRBY', counts, args[i + 1], args[i])
    tokens = tokens + tonumber(args[i + 1])
  end
  redis.call('HINCRBY', meta, FIELD.tokens, tokens)
  redis.call('HINCRBY', meta, FIELD.pairs, (n - FIXED) / 2)

  if redis.call('HINCRBY', partcount, task, 1) < parts then
    return 1
  end
  -- Last part: the task is done.
  redis.call('SADD', done, task)
  redis.call('HDEL', partcount, task)
  for p = 0, parts - 1 do
    redis.call('SREM', parts_set, task .. '#' .. p .. '/' .. parts)
  end
  ack_and_delete(stream, group, entry)
  redis.call('HINCRBY', meta, FIELD.tasks_done, 1)
  add_stats(meta, args, 6)
  return 1
end

--[[
Stores one task's counts as a single encoded blob, exactly once (the
"reduce" commit mode, the default): the coordinator merges the blobs of all
done tasks into the sorted set when the job is finished. One O(1) write per
task instead of one ZINCRBY per (task, key) pair.

KEYS: stream, done (set), results (hash task id -> blob), meta
ARGV: group, entry id, task id, rows, bytes, short rows, invalid-utf8 rows,
      decoded bytes, tokens, pairs, blob
Returns 1 when stored, 0 for a duplicate.
--]]
local function commit_task_result(keys, args)
  local stream, done, results, meta = keys[1], keys[2], keys[3], keys[4]
  local group, entry, task, blob = args[1], args[2], args[3], args[11]
  if #args ~= 11 or not blob then
    return redis.error_reply('ERR wc: malformed result commit for task ' .. tostring(task))
  end
  if not numbers_at(args, 4, 10) then
    return redis.error_reply('ERR wc: malformed stats for task ' .. task)
  end
  -- The gate.
  if redis.call('SADD', done, task) == 0 then
    ack_and_delete(stream, group, entry)
    redis.call('HINCRBY', meta, FIELD.duplicates, 1)
    return 0
  end
  redis.call('HSET', results, task, blob)
  ack_and_delete(stream, group, entry)
  redis.call('HINCRBY', meta, FIELD.tasks_done, 1)
  add_stats(meta, args, 4)
  redis.call('HINCRBY', meta, FIELD.tokens, args[9])
  redis.call('HINCRBY', meta, FIELD.pairs, args[10])
  return 1
end

--[[
Records a failed attempt at a task: retried (a fresh stream entry) until it
has failed max_attempts times, then dead-lettered with its error.

KEYS: stream, done, attempts (hash), dead (hash), meta
ARGV: group, entry id, task id, max attempts, error, then the entry's
      field, value, ... (to re-submit it)
Returns 'done' (already counted), 'retry' or 'dead'.
--]]
local function fail_task(keys, args)
  local stream, done, attempts, dead, meta = keys[1], keys[2], keys[3], keys[4], keys[5]
  local group, entry, task, max, err = args[1], args[2], args[3], tonumber(args[4]), args[5]
  if not max or (#args - 5) % 2 ~= 0 or #args < 7 then
    return redis.error_reply('ERR wc: malformed fail_task')
  end
  if redis.call('SISMEMBER', done, task) == 1 then
    ack_and_delete(stream, group, entry)
    return 'done'
  end
  local n = redis.call('HINCRBY', attempts, task, 1)
  ack_and_delete(stream, group, entry)
  if n >= max then
    redis.call('HSET', dead, task, err)
    redis.call('HINCRBY', meta, FIELD.dead, 1)
    return 'dead'
  end
  local fields = {}
  for i = 6, #args do
    fields[#fields + 1] = args[i]
  end
  redis.call('XADD', stream, '*', unpack(fields))
  redis.call('HINCRBY', meta, FIELD.retries, 1)
  return 'retry'
end

--[[
Reduce mode, the last step: the sorted set built by the coordinator under a
temporary name replaces the job's counts only if it is complete (a Redis
restart during the build could have lost part of it), together with the
job's state. (The per-task results live in the partitions' slots; the
coordinator drops them afterwards.)

KEYS: building (zset), counts (zset), meta
ARGV: expected number of keys
--]]
local function publish_counts(keys, args)
  local building, counts, meta = keys[1], keys[2], keys[3]
  local expected = tonumber(args[1])
  if not expected then
    return redis.error_reply('ERR wc: malformed publish')
  end
  local have = redis.call('ZCARD', building)
  if have ~= expected then
    return redis.error_reply('ERR wc: the sorted set being built has ' .. have .. ' keys, expected ' .. expected .. '; rebuild it')
  end
  if expected > 0 then
    redis.call('RENAME', building, counts)
  else
    redis.call('DEL', counts)
  end
  redis.call('HSET', meta, FIELD.state, FINISHED)
  return expected
end

redis.register_function('atomic_increment_and_acknowledge', atomic_increment_and_acknowledge)
redis.register_function('wc_commit_task_result', commit_task_result)
redis.register_function('wc_publish_counts', publish_counts)
redis.register_function('wc_fail_task', fail_task)
