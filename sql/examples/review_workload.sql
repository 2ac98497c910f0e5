-- The clerical review workload: pairs waiting, by reason and probability band.
SELECT reason,
       CASE WHEN match_probability >= 0.8 THEN '0.8+' WHEN match_probability >= 0.5 THEN '0.5-0.8' ELSE 'under 0.5' END AS band,
       count(*) AS pairs
FROM review_queue
GROUP BY 1, 2
ORDER BY 1, 2
