-- The database of the sqlite tests and demo: @ROWS@ rows (sed replaces it).
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @ROWS@)
INSERT INTO t SELECT x, (x * 2654435761) % 1000003,
	printf('row-%08d-%s', x, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 13))
	FROM c;
CREATE INDEX t_k ON t(k);
