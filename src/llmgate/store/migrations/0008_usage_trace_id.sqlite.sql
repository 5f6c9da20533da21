-- The request's W3C trace id (tracing on: observe/tracing.py), to find a usage row's trace and back.
ALTER TABLE usage ADD COLUMN trace_id TEXT;
