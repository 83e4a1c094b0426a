-- The outbox keeps one row per transaction holding all the events it produced (framing in
-- services/storage/outbox_row.h), instead of one row per event: a batch of 64 stores wrote and
-- the relay deleted 64 rows, now one. The table is a short queue the relay keeps near empty,
-- so it is not keyed by user (a transaction spans users); docs/storage.md says where it lives
-- when the user tables are partitioned or distributed.
--
-- event_outbox stays as it is: replicas of the previous release keep writing into it while the
-- new one rolls out, and the new relay drains it too (a later migration drops it). Nothing is
-- copied here: a copy could not see rows committed while it ran.
CREATE TABLE event_outbox_rows (
  id         bigserial   PRIMARY KEY,
  events     bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
