-- Refund requests as risk scoring sees them: who asked, for how much, how it ended.
--
-- A working table, upserted by the risk activities (`score_refund` writes the score and the
-- status the refund is entering, `record_outcome` the final status). It is not the books: the
-- ledger stays append-only and is where money that moved is read from (transfers carry
-- `refund_id` = `request_id`). Risk counts a customer's refunds and earlier rejections here.

CREATE TABLE refund_requests (
    request_id  text PRIMARY KEY CHECK (request_id <> ''),
    customer_id text NOT NULL,
    payment_key text,
    amount      bigint,           -- minor units; unknown when refused before it was planned
    currency    text NOT NULL,    -- as requested (upper case); not checked: refusals keep theirs
    status      text NOT NULL CHECK (status IN (
        'RECEIVED', 'VALIDATING', 'AWAITING_REVIEW', 'APPROVED', 'REFUNDING',
        'AWAITING_SETTLEMENT', 'SUCCEEDED', 'REJECTED', 'FAILED', 'EXPIRED', 'CANCELED')),
    risk_score  integer CHECK (risk_score BETWEEN 0 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refund_requests_customer_created ON refund_requests (customer_id, created_at);
