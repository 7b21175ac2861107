-- Does the score follow diversity? Pearson correlation of score with DE and RME over the scored
-- subsets of each benchmark.
SELECT
    CAST(sc.benchmark AS VARCHAR)                  AS benchmark,
    count(*)                                       AS subsets,
    corr(CAST(sc.score AS DOUBLE), s.de_bits)      AS score_vs_de,
    corr(CAST(sc.score AS DOUBLE), s.rme_bits)     AS score_vs_rme
FROM scores sc JOIN summary s ON CAST(sc.subset AS VARCHAR) = s.name
GROUP BY 1
ORDER BY 1;
