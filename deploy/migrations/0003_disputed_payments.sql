-- Payments the customer disputed at the provider, as its webhook said: no new refund of
-- them may be reserved (the dispute decides their money), whatever the provider's own
-- payment object says at the moment of validation.
CREATE TABLE disputed_payments (
    payment_key text PRIMARY KEY,          -- e.g. stripe:pi_123 (the ledger's payment key)
    dispute_id  text NOT NULL,
    disputed_at timestamptz NOT NULL DEFAULT now()
);
