\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', :t, true);
END;
\endpipeline
