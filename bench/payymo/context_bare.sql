\startpipeline
BEGIN;
SELECT payymo.set_tenant(:key);
END;
\endpipeline
