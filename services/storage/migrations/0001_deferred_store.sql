-- The deferred store. Every table of user data is keyed by the recipient first, so that it can
-- be hash-partitioned by recipient_aor, or distributed with Citus on recipient_aor, without a
-- redesign (docs/storage.md).

-- Message-ID numbers. A sequence, not a counter row: nextval takes no row lock, so concurrent
-- stores never queue on it. Values only grow; gaps (rolled-back or duplicate stores) are fine.
CREATE SEQUENCE deferred_message_number AS bigint START WITH 10000000000;

-- One row per user with a store: counts for quotas and summaries, and the store version that
-- every change increases. Stores for one user lock this row, which serialises the quota check
-- across storage replicas without any global lock.
CREATE TABLE user_stores (
  recipient_aor     text   PRIMARY KEY,
  message_count     bigint NOT NULL DEFAULT 0,
  total_bytes       bigint NOT NULL DEFAULT 0,
  version           bigint NOT NULL DEFAULT 0,
  -- Store version up to which the user has been told about the messages (new -> old).
  notified_version  bigint NOT NULL DEFAULT 0
);

CREATE TABLE deferred_messages (
  recipient_aor   text        NOT NULL,
  -- Value of deferred_message_number; its digits are the string part of the Message-ID.
  number          bigint      NOT NULL,
  message_id      text        NOT NULL,
  kind            smallint    NOT NULL,  -- 1 pager-mode MESSAGE, 2 large-message session
  received_at     timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  -- Store version at which the message arrived (new/old against notified_version).
  stored_version  bigint      NOT NULL,
  call_id         text        NOT NULL,
  cseq            bigint      NOT NULL,
  -- MSRP Message-ID for large messages, '' for pager; part of the dedupe key.
  msrp_message_id text        NOT NULL DEFAULT '',
  from_header     text        NOT NULL DEFAULT '',
  to_header       text        NOT NULL DEFAULT '',
  p_asserted_identity text    NOT NULL DEFAULT '',
  subject         text        NOT NULL DEFAULT '',
  date_header     text        NOT NULL DEFAULT '',
  priority        text        NOT NULL DEFAULT '',
  content_type    text        NOT NULL DEFAULT '',
  size_bytes      bigint      NOT NULL,
  -- Pager mode: the complete SIP request, byte for byte. Large mode: the serialized
  -- dims.v1.LargeMessageContent (session headers and MSRP content).
  content         bytea       NOT NULL,
  PRIMARY KEY (recipient_aor, number),
  -- Idempotency: a retransmitted or retried request is stored once. (message_id needs no
  -- index of its own: it is unique by construction, and lookups name the user, whose few
  -- rows the primary key finds.)
  UNIQUE (recipient_aor, call_id, cseq, msrp_message_id)
);

CREATE INDEX deferred_messages_expiry ON deferred_messages (expires_at);

-- Transactional outbox of bus events: written in the transaction that changes the store,
-- appended to the Redis stream afterwards and then deleted, so that a Redis outage delays
-- events but never loses them. Keyed by the user too, so that it is distributed with the
-- user's other rows.
CREATE TABLE event_outbox (
  recipient_aor text        NOT NULL,
  id            bigserial   NOT NULL,
  event_type    text        NOT NULL,
  payload       bytea       NOT NULL,  -- serialized dims.v1.BusEvent
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (recipient_aor, id)
);
CREATE INDEX event_outbox_order ON event_outbox (id);
