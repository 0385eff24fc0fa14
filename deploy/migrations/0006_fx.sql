-- Currency: a refund goes back in the payment's own currency; the ledger also values it in
-- the merchant's settlement currency at capture and at refund and books the difference to
-- merchant:fx_gain_loss (activities/fx.py).
--
--   fx_rates       the configured rates table (`refunds fx import`): an amount in `currency`
--                  times `rate` is its value in `settlement_currency`, from `valid_from` on.
--   fx_valuations  the rate a refund's payment was valued at when it was captured, taken
--                  when the refund is reserved (the provider's own rate, or the table's).
--   fx_movements   one row per posted refund in a foreign currency: the amount, both rates,
--                  both values and their difference. Its settlement-currency transfers
--                  (`refund-{id}:value`, `:fx`) are ordinary one-phase ledger transfers, so
--                  each stays single-currency and balanced; `refunds ledger verify` checks
--                  them against this row.
-- Valuations and movements are part of the books: append-only, like the ledger.

CREATE TABLE fx_rates (
    currency            ledger_currency NOT NULL,
    settlement_currency ledger_currency NOT NULL,
    valid_from          timestamptz NOT NULL,
    rate                numeric NOT NULL CHECK (rate > 0),
    source              text NOT NULL CHECK (source <> ''),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, settlement_currency, valid_from),
    CONSTRAINT fx_rates_two_currencies CHECK (currency <> settlement_currency)
);

CREATE TABLE fx_valuations (
    refund_id           text PRIMARY KEY CHECK (refund_id <> ''),
    payment_key         text NOT NULL CHECK (payment_key <> ''),
    currency            ledger_currency NOT NULL,
    settlement_currency ledger_currency NOT NULL,
    capture_rate        numeric NOT NULL CHECK (capture_rate > 0),
    capture_rate_source text NOT NULL CHECK (capture_rate_source IN ('provider', 'table')),
    captured_at         timestamptz NOT NULL,  -- the moment the capture rate is for
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fx_valuations_two_currencies CHECK (currency <> settlement_currency)
);

CREATE TABLE fx_movements (
    transfer_id         text PRIMARY KEY REFERENCES ledger_transfers (id),  -- the refund's post
    refund_id           text NOT NULL UNIQUE REFERENCES fx_valuations (refund_id),
    currency            ledger_currency NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    settlement_currency ledger_currency NOT NULL,
    capture_rate        numeric NOT NULL CHECK (capture_rate > 0),
    value_at_capture    bigint NOT NULL CHECK (value_at_capture >= 0),
    refund_rate         numeric NOT NULL CHECK (refund_rate > 0),
    refund_rate_source  text NOT NULL CHECK (refund_rate_source <> ''),
    value_at_refund     bigint NOT NULL CHECK (value_at_refund >= 0),
    fx_difference       bigint NOT NULL,  -- value_at_refund - value_at_capture: > 0 a loss
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fx_movements_two_currencies CHECK (currency <> settlement_currency),
    CONSTRAINT fx_movements_difference
        CHECK (fx_difference = value_at_refund - value_at_capture)
);

CREATE TRIGGER fx_valuations_append_only
    BEFORE UPDATE OR DELETE ON fx_valuations
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER fx_valuations_no_truncate
    BEFORE TRUNCATE ON fx_valuations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER fx_movements_append_only
    BEFORE UPDATE OR DELETE ON fx_movements
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER fx_movements_no_truncate
    BEFORE TRUNCATE ON fx_movements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
