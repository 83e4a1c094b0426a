-- Compress large values with lz4 where the server has it (PostgreSQL 14 and later, built with
-- lz4, as Debian's and most distributions' are). pglz cost the store path a twentieth of
-- PostgreSQL's time on the outbox rows alone (a batch's events pass its 2 kB threshold); lz4
-- compresses several times faster for about the same size. Only values written from now on
-- change; a server without lz4 (or before 14, which has no such setting) keeps pglz. The
-- statements are EXECUTEd so that an older server never parses SET COMPRESSION.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    EXECUTE 'ALTER TABLE deferred_messages ALTER COLUMN content SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE event_outbox_rows ALTER COLUMN events SET COMPRESSION lz4';
  END IF;
END
$$;
