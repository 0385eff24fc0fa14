-- The double-entry ledger: payments (refund limits), transfers (the idempotency keys),
-- entries (the signed movements that make balances).
--
-- The database, not the application, keeps the books honest:
--   * reserved + refunded <= captured on every payment, enforced by a CHECK on a row that
--     every reservation locks, so concurrent reservations serialize and none over-refunds;
--   * a pending transfer is posted or voided at most once (partial unique index);
--   * posted transfers write their two entries themselves, and each transfer's entries sum
--     to zero per currency at commit (deferred constraint trigger);
--   * transfers and entries are append-only: corrections are new transfers.

CREATE DOMAIN ledger_currency AS text
    CHECK (VALUE ~ '^[A-Z]{3}$');

-- Account names are paths: merchant:refunds, psp:stripe:clearing, customers:cus_123.
CREATE DOMAIN ledger_account AS text
    CHECK (VALUE ~ '^[a-z0-9_]+(:[A-Za-z0-9_.-]+)*$');

CREATE TABLE ledger_payments (
    payment_key text PRIMARY KEY CHECK (payment_key <> ''),
    currency    ledger_currency NOT NULL,
    captured    bigint NOT NULL CHECK (captured >= 0),
    reserved    bigint NOT NULL DEFAULT 0,
    refunded    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_payments_within_captured
        CHECK (reserved >= 0 AND refunded >= 0 AND reserved + refunded <= captured)
);

CREATE TABLE ledger_transfers (
    id             text PRIMARY KEY CHECK (id <> ''),
    kind           text NOT NULL CHECK (kind IN ('pending', 'post', 'void', 'single')),
    pending_id     text REFERENCES ledger_transfers (id),
    debit_account  ledger_account NOT NULL,
    credit_account ledger_account NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    currency       ledger_currency NOT NULL,
    payment_key    text REFERENCES ledger_payments (payment_key),
    refund_id      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_transfers_two_accounts CHECK (debit_account <> credit_account),
    CONSTRAINT ledger_transfers_pending_id_iff_resolution
        CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL)),
    -- A reservation is always against a payment's refund limit.
    CONSTRAINT ledger_transfers_payment_of_two_phase
        CHECK (kind = 'single' OR payment_key IS NOT NULL)
);

-- A pending transfer is resolved at most once: never posted twice, never posted and voided.
CREATE UNIQUE INDEX ledger_transfers_resolved_once
    ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_refund_id ON ledger_transfers (refund_id);
CREATE INDEX ledger_transfers_payment_key ON ledger_transfers (payment_key);

CREATE TABLE ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id text NOT NULL REFERENCES ledger_transfers (id),
    account     ledger_account NOT NULL,
    currency    ledger_currency NOT NULL,
    amount      bigint NOT NULL CHECK (amount <> 0),  -- debit +, credit -
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_transfer_id ON ledger_entries (transfer_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account, currency);

CREATE VIEW ledger_balances AS
    SELECT account, currency, sum(amount)::bigint AS balance
    FROM ledger_entries
    GROUP BY account, currency;


-- Counters and entries follow from each inserted transfer. AFTER, not BEFORE: a BEFORE
-- trigger runs even for a row that INSERT ... ON CONFLICT DO NOTHING then skips.
CREATE FUNCTION ledger_apply_transfer() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payment ledger_payments%ROWTYPE;
    pending ledger_transfers%ROWTYPE;
BEGIN
    IF NEW.kind IN ('post', 'void') THEN
        SELECT * INTO pending FROM ledger_transfers WHERE id = NEW.pending_id;
        IF NOT FOUND OR pending.kind <> 'pending' THEN
            RAISE EXCEPTION 'transfer % (%): % is not a pending transfer',
                    NEW.id, NEW.kind, NEW.pending_id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'ledger_transfers_matches_pending';
        END IF;
        IF NEW.payment_key IS DISTINCT FROM pending.payment_key
           OR NEW.currency <> pending.currency
           OR NEW.debit_account <> pending.debit_account
           OR NEW.credit_account <> pending.credit_account THEN
            RAISE EXCEPTION 'transfer % (%) must have the payment, currency and accounts of its pending transfer %',
                    NEW.id, NEW.kind, pending.id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'ledger_transfers_matches_pending';
        END IF;
        IF NEW.kind = 'void' AND NEW.amount <> pending.amount THEN
            RAISE EXCEPTION 'void % must release the whole pending amount % of %, not %',
                    NEW.id, pending.amount, pending.id, NEW.amount
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'ledger_transfers_matches_pending';
        END IF;
        IF NEW.kind = 'post' AND NEW.amount > pending.amount THEN
            RAISE EXCEPTION 'post % of % % is more than the % reserved by pending transfer %',
                    NEW.id, NEW.amount, NEW.currency, pending.amount, pending.id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'ledger_transfers_post_within_pending';
        END IF;
    END IF;

    IF NEW.kind IN ('pending', 'post', 'void') THEN
        -- NO KEY UPDATE, not UPDATE: it must not wait on the KEY SHARE lock that the
        -- foreign-key check of a concurrent transfer holds on the same payment.
        SELECT * INTO payment FROM ledger_payments
            WHERE payment_key = NEW.payment_key FOR NO KEY UPDATE;
        IF NEW.currency <> payment.currency THEN
            RAISE EXCEPTION 'transfer % is in % but payment % is in %',
                    NEW.id, NEW.currency, payment.payment_key, payment.currency
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'ledger_transfers_currency_of_payment';
        END IF;
        IF NEW.kind = 'pending' THEN
            IF payment.reserved + payment.refunded + NEW.amount > payment.captured THEN
                -- The CHECK below would refuse it anyway; this says the figures.
                RAISE EXCEPTION 'over-refund on payment %: requested % %, captured %, already reserved %, already refunded %',
                        payment.payment_key, NEW.amount, NEW.currency, payment.captured,
                        payment.reserved, payment.refunded
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'ledger_payments_within_captured';
            END IF;
            UPDATE ledger_payments SET reserved = reserved + NEW.amount
                WHERE payment_key = NEW.payment_key;
        ELSIF NEW.kind = 'post' THEN
            UPDATE ledger_payments
                SET reserved = reserved - pending.amount, refunded = refunded + NEW.amount
                WHERE payment_key = NEW.payment_key;
        ELSE
            UPDATE ledger_payments SET reserved = reserved - pending.amount
                WHERE payment_key = NEW.payment_key;
        END IF;
    END IF;

    -- Reservations are not balances: only posted transfers move money.
    IF NEW.kind IN ('post', 'single') THEN
        INSERT INTO ledger_entries (transfer_id, account, currency, amount) VALUES
            (NEW.id, NEW.debit_account, NEW.currency, NEW.amount),
            (NEW.id, NEW.credit_account, NEW.currency, -NEW.amount);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_transfers_apply
    AFTER INSERT ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_transfer();


-- At commit, every touched transfer balances per currency and its entries are exactly the
-- movement it describes (post/single: debit +amount, credit -amount; pending/void: none).
CREATE FUNCTION ledger_assert_transfer_entries(checked_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    transfer ledger_transfers%ROWTYPE;
    unbalanced record;
    matches boolean;
BEGIN
    SELECT currency, sum(amount) AS total INTO unbalanced
        FROM ledger_entries WHERE transfer_id = checked_id
        GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transfer % does not balance: its % entries sum to %, not 0',
                checked_id, unbalanced.currency, unbalanced.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balance';
    END IF;

    SELECT * INTO transfer FROM ledger_transfers WHERE id = checked_id;
    IF transfer.kind IN ('post', 'single') THEN
        SELECT count(*) = 2
               AND bool_and(e.currency = transfer.currency)
               AND bool_or(e.account = transfer.debit_account AND e.amount = transfer.amount)
               AND bool_or(e.account = transfer.credit_account AND e.amount = -transfer.amount)
            INTO matches
            FROM ledger_entries e WHERE e.transfer_id = checked_id;
    ELSE
        SELECT count(*) = 0 INTO matches FROM ledger_entries e WHERE e.transfer_id = checked_id;
    END IF;
    IF NOT coalesce(matches, false) THEN
        RAISE EXCEPTION 'the entries of transfer % (%) are not the movement it describes',
                checked_id, transfer.kind
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_match_transfer';
    END IF;
END;
$$;

CREATE FUNCTION ledger_check_entry_transfer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_transfer_entries(NEW.transfer_id);
    RETURN NULL;
END;
$$;

CREATE FUNCTION ledger_check_transfer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_transfer_entries(NEW.id);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balance
    AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_transfer();

CREATE CONSTRAINT TRIGGER ledger_transfers_entries
    AFTER INSERT ON ledger_transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer();


-- Append-only: what happened stays written; a correction is a new transfer.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (corrections are new transfers)',
            TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER ledger_transfers_append_only
    BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transfers_no_truncate
    BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();


-- A payment's reserved and refunded follow its transfers only (the trigger above runs at
-- depth 2 when it updates them); captured may be corrected, within the CHECK. A payment is
-- part of the books and is never deleted.
CREATE FUNCTION ledger_guard_payment() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.payment_key = OLD.payment_key AND NEW.currency = OLD.currency
           AND (pg_trigger_depth() > 1
                OR (NEW.reserved = OLD.reserved AND NEW.refunded = OLD.refunded)) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'payment %: key, currency, reserved and refunded change only through ledger transfers',
                OLD.payment_key
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'ledger_payments: % refused (payments are part of the books)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER ledger_payments_guard
    BEFORE UPDATE OR DELETE ON ledger_payments
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_payment();
CREATE TRIGGER ledger_payments_no_truncate
    BEFORE TRUNCATE ON ledger_payments
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_guard_payment();
