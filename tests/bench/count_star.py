#!/usr/bin/python3
# count_star.py -- times SELECT count(*) (plan 6: counts without copying rows)
# against SELECT count(value) (copies every row) over 1M entries, and both
# on an ordinary :memory: table t of the same rows; then count(*) of 200k
# keys of 100 bytes.
# Run with Debian's /usr/bin/python3 (it can load extensions) after ./test.sh:
#   /usr/bin/python3 tests/bench/count_star.py [path/to/mmap.so]
import os, sqlite3, sys, time
db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../build/mmap"))
name = "cnt%d" % os.getpid()
db.execute("CREATE VIRTUAL TABLE temp.m USING mmap(name='%s', size='256M')" % name)
db.execute("BEGIN")
db.executemany("INSERT INTO m VALUES (?, ?)", (("key%07d" % i, "v" * 32) for i in range(1000000)))
db.execute("COMMIT")
db.execute("CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID")
db.execute("INSERT INTO t SELECT key, value FROM m")
for q in ("SELECT count(*) FROM m", "SELECT count(value) FROM m", "SELECT count(*) FROM t",
          "SELECT count(value) FROM t"):
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); n = db.execute(q).fetchone()[0]; best = min(best, time.perf_counter() - t)
    print("%-28s %d rows  best of 5: %.1f ms" % (q, n, best * 1e3))
db.execute("SELECT mmap_unlink('%s')" % name)

# Keys longer than the key-only estimate of 64 bytes a row: 200k keys of 100 bytes.
db.commit()  # the INSERT INTO t above opened a transaction (the module's legacy mode)
db.execute("CREATE VIRTUAL TABLE temp.lk USING mmap(name='%s_lk', size='64M')" % name)
db.execute("BEGIN")
db.executemany("INSERT INTO lk VALUES (?, ?)", (("%0100d" % i, i) for i in range(200000)))
db.execute("COMMIT")
best = 1e9
for _ in range(7):
    t = time.perf_counter(); n = db.execute("SELECT count(*) FROM lk").fetchone()[0]; best = min(best, time.perf_counter() - t)
print("%-28s %d rows  best of 7: %.1f ms (100-byte keys)" % ("SELECT count(*) FROM lk", n, best * 1e3))
db.execute("SELECT mmap_unlink('%s_lk')" % name)
