-- tarantool_server.lua PORT DIR WAL_MODE KEYSPACE DATASIZE -- the Tarantool
-- peer of the net-doc rows (bench/bench_net.py): listens on
-- 127.0.0.1:PORT in the foreground (stopped by its pid), keeps its WAL and
-- snapshots in DIR with box.cfg wal_mode WAL_MODE ('fsync' for the durable
-- insert row: the WAL thread writes and fsyncs each batch of transactions
-- before they are acknowledged, so commits waiting together share one
-- sync), and holds the space `docs` (memtx, primary key unsigned with a
-- sequence, field 2 the document).  Documents 1 ... KEYSPACE are loaded
-- with the same JSON value of DATASIZE bytes sprig-bench loads into Sprig
-- (value(k) in tools/sprig-bench/frames.c), then "ready" is printed.
-- The guest user may read and write: loopback only, a benchmark.
local port, dir, wal_mode = arg[1], arg[2], arg[3]
local keyspace, datasize = tonumber(arg[4]), tonumber(arg[5])

box.cfg{
    listen = '127.0.0.1:' .. port,
    work_dir = dir,
    wal_mode = wal_mode,
    memtx_memory = 512 * 1024 * 1024,
    checkpoint_interval = 0,
    log_level = 4,
}
box.schema.user.grant('guest', 'read,write,execute', 'universe', nil,
                      {if_not_exists = true})
local s = box.schema.space.create('docs', {id = 512, if_not_exists = true})
s:create_index('primary', {type = 'tree', parts = {1, 'unsigned'},
                           sequence = true, if_not_exists = true})

local pad = string.rep('x', datasize - 27)
local function value(k)
    return string.format('{"k":"%012d","p":"%s"}', k, pad)
end

for first = 1, keyspace, 1000 do
    box.begin()
    for k = first, math.min(first + 999, keyspace) do
        s:replace{k, value(k)}
    end
    box.commit()
end
print('ready')
io.stdout:flush()
