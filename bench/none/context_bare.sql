\startpipeline
BEGIN;
SELECT :t;
END;
\endpipeline
