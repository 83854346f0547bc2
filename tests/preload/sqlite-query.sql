-- Updates and queries of the sqlite tests and demo; the last line is the
-- integrity check.
UPDATE t SET v = v || '-u' WHERE id % 7 = 0;
DELETE FROM t WHERE id % 11 = 0;
INSERT INTO t(k, v) SELECT k + 1, v || '-copy' FROM t WHERE id % 13 = 0;
SELECT count(*), sum(k), sum(length(v)) FROM t;
SELECT id, k, v FROM t WHERE k BETWEEN 5000 AND 5100 ORDER BY k, id LIMIT 5;
SELECT k % 10, count(*), max(v) FROM t GROUP BY 1 ORDER BY 1;
PRAGMA integrity_check;
