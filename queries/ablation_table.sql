-- The ablation table: mean and standard deviation of the score over seeds, per benchmark,
-- strategy and budget, with the mean diversity of those subsets. Tables: summary (from
-- `tdscale budget`), scores (subset, benchmark, score).
SELECT
    CAST(sc.benchmark AS VARCHAR)   AS benchmark,
    s.strategy,
    s.budget,
    avg(CAST(sc.score AS DOUBLE))    AS score_mean,
    stddev(CAST(sc.score AS DOUBLE)) AS score_sd,
    count(*)                         AS runs,
    avg(s.de_bits)                   AS de_bits,
    avg(s.rme_bits)                  AS rme_bits
FROM scores sc JOIN summary s ON CAST(sc.subset AS VARCHAR) = s.name
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
