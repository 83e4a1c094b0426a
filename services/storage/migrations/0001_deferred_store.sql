-- The deferred store: one row per message kept for a user who could not take it.
-- Every table of user data is keyed by the recipient first, so that it can be
-- hash-partitioned by recipient_aor, or distributed with Citus on recipient_aor, without a
-- redesign (docs/storage.md).

CREATE TABLE deferred_messages (
  recipient_aor   text        NOT NULL,
  -- Per-store sequence number; its digits are the string part of the Message-ID.
  seq             bigint      NOT NULL,
  message_id      text        NOT NULL,
  kind            smallint    NOT NULL,  -- 1 pager-mode MESSAGE, 2 large-message session
  received_at     timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  call_id         text        NOT NULL,
  cseq            bigint      NOT NULL,
  from_header     text        NOT NULL DEFAULT '',
  to_header       text        NOT NULL DEFAULT '',
  p_asserted_identity text    NOT NULL DEFAULT '',
  subject         text        NOT NULL DEFAULT '',
  date_header     text        NOT NULL DEFAULT '',
  priority        text        NOT NULL DEFAULT '',
  content_type    text        NOT NULL DEFAULT '',
  size_bytes      integer     NOT NULL,
  -- Pager mode: the complete SIP request, byte for byte. Large mode: see large_content.
  content         bytea       NOT NULL,
  PRIMARY KEY (recipient_aor, seq),
  -- Idempotency: a retransmitted or retried request is stored once.
  UNIQUE (recipient_aor, call_id, cseq),
  UNIQUE (recipient_aor, message_id)
);

CREATE INDEX deferred_messages_expiry ON deferred_messages (expires_at);
