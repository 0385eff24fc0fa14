-- The Adyen payment book. Adyen has no API to read a payment: an integration learns its
-- payments from Adyen's notifications (AUTHORISATION, CAPTURE, CANCELLATION, REFUND, ...) and
-- keeps what they said. The amounts and state of a payment are recomputed from its
-- modifications after every notification, so notifications arriving out of order (a CAPTURE
-- before its AUTHORISATION) still leave the same book.
CREATE TABLE adyen_payments (
    psp_reference      text PRIMARY KEY,
    merchant_account   text NOT NULL,
    merchant_reference text NOT NULL DEFAULT '',
    currency           text NOT NULL,
    amount_authorised  bigint NOT NULL CHECK (amount_authorised >= 0),
    amount_captured    bigint NOT NULL DEFAULT 0 CHECK (amount_captured >= 0),
    -- successful REFUNDs minus those Adyen failed (REFUND_FAILED) or reversed afterwards
    amount_refunded    bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    state              text NOT NULL CHECK (state IN ('authorised', 'captured', 'canceled', 'refused')),
    disputed           boolean NOT NULL DEFAULT false,
    shopper_reference  text,
    authorised_at      timestamptz,           -- the AUTHORISATION's eventDate
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Refunds, cancels and captures of a payment, keyed by their own pspReference. A row is
-- written when the service asks Adyen (outcome pending) or when the notification comes,
-- whichever is first.
CREATE TABLE adyen_modifications (
    psp_reference         text PRIMARY KEY,
    payment_psp_reference text NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('refund', 'cancel', 'capture')),
    merchant_reference    text NOT NULL DEFAULT '',  -- for refunds and cancels: our request id
    amount                bigint NOT NULL CHECK (amount >= 0),
    currency              text NOT NULL,
    outcome               text NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
    reason                text,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX adyen_modifications_by_payment
    ON adyen_modifications (payment_psp_reference, merchant_reference);

-- Every notification item already recorded: Adyen delivers at least once, and the same item
-- twice must change nothing. Also where chargebacks are remembered.
CREATE TABLE adyen_notifications_seen (
    notification_id       text PRIMARY KEY,  -- adyen:{pspReference}:{eventCode}:{success}
    event_code            text NOT NULL,
    psp_reference         text NOT NULL,
    payment_psp_reference text NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX adyen_notifications_by_payment
    ON adyen_notifications_seen (payment_psp_reference, event_code);
