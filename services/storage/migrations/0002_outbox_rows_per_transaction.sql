-- The outbox keeps one row per transaction holding all the events it produced (framing in
-- services/storage/outbox_row.h), instead of one row per event: a batch of 64 stores wrote and
-- the relay deleted 64 rows, now one. The table is a short queue the relay keeps near empty,
-- so it is not keyed by user (a transaction spans users); docs/storage.md says where it lives
-- when the user tables are partitioned or distributed.
CREATE TABLE event_outbox_rows (
  id         bigserial   PRIMARY KEY,
  events     bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Events not yet relayed move over, oldest first, one row each. event_outbox itself stays: the
-- previous release keeps writing into it while the new one rolls out, and the new relay drains
-- it too (a later migration drops it).
INSERT INTO event_outbox_rows (events, created_at)
SELECT int4send(octet_length(convert_to(recipient_aor, 'UTF8'))) ||
       convert_to(recipient_aor, 'UTF8') ||
       int4send(octet_length(convert_to(event_type, 'UTF8'))) || convert_to(event_type, 'UTF8') ||
       int4send(octet_length(payload)) || payload,
       created_at
FROM event_outbox ORDER BY id;
DELETE FROM event_outbox;
