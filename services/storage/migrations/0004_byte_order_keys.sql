-- Key columns compare as bytes (COLLATE "C"), whatever locale the database was created with.
-- An AOR, a Call-ID and an MSRP Message-ID are identifiers, never sorted for people, and under
-- a linguistic collation (en_US.UTF-8, common on managed servers) every B-tree comparison goes
-- through strcoll: the dedupe index alone made an insert about a fifth slower with C.utf8, and
-- more with others. Equality is unchanged (byte equality either way). The tables are not
-- rewritten; the indexes on these columns are rebuilt, under a lock that holds writes back for
-- the time that takes (short on the small stores of a new deployment; see docs/storage.md for
-- a large one).
ALTER TABLE user_stores ALTER COLUMN recipient_aor TYPE text COLLATE "C";
ALTER TABLE deferred_messages
  ALTER COLUMN recipient_aor TYPE text COLLATE "C",
  ALTER COLUMN call_id TYPE text COLLATE "C",
  ALTER COLUMN msrp_message_id TYPE text COLLATE "C";
