/**
 * A Lua script that creates a record (a migration's or a batch's) and indexes it, once.
 * KEYS[1] the record, KEYS[2] the index by creation time, then any keys `more` uses; ARGV[1] the
 * record's text, ARGV[2] its TTL, ARGV[3] its creation time, ARGV[4] its id, then any `more`
 * uses. Answers 1 when created, or when this very record is already there: the create, resent
 * after its reply was lost on a dropped connection. A worker may have moved the record on since,
 * so it is known by id and creation time, not by its text. 0: another record holds the id.
 */
export function createScript(more = ''): string {
  return `local cur = redis.call('GET', KEYS[1])
if cur then
  local r = cjson.decode(cur)
  return (r.id == ARGV[4] and r.createdAt == tonumber(ARGV[3])) and 1 or 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
${more}return 1`;
}
