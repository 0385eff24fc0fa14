-- The order store: orders as the shop charged them, and which of their units refunds hold.
--
-- Fed by the shop's signed order.created / order.updated events, by `refunds orders import`,
-- or by a commerce platform's order source (activities/orders.py writes all three). Amounts
-- are integers in the order's minor units, exactly as charged; a tax is stored with the rate
-- and jurisdiction it was charged at and never recomputed.
--
-- The database, not the application, keeps refunds honest about units:
--   * a unit of a line is held by at most one live (unreleased) refund (partial unique index);
--   * a held unit exists: 1 <= unit_no <= the line's quantity (shipping: line '#shipping',
--     unit 1), checked when a unit is claimed, and again when a line's quantity is lowered or
--     the line removed while live refunds hold its units (triggers on both tables).

CREATE TABLE orders (
    order_id        text PRIMARY KEY CHECK (order_id <> ''),
    psp             text NOT NULL CHECK (psp IN ('stripe', 'paypal', 'adyen')),
    payment_id      text NOT NULL CHECK (payment_id <> ''),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    customer_id     text,
    placed_at       timestamptz,
    shipping_amount bigint NOT NULL DEFAULT 0 CHECK (shipping_amount >= 0),
    source          text NOT NULL CHECK (source <> ''),    -- shop, import, platform
    -- The newest event (or import) time applied: an older event arriving late is ignored.
    version         timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_payment ON orders (psp, payment_id);

CREATE TABLE order_lines (
    order_id   text NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_id    text NOT NULL CHECK (line_id <> '' AND line_id <> '#shipping'),
    position   integer NOT NULL,                           -- the line's place in the order
    sku        text NOT NULL CHECK (sku <> ''),
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price bigint NOT NULL CHECK (unit_price >= 0),
    discount   bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),  -- for the whole line
    PRIMARY KEY (order_id, line_id),
    CONSTRAINT order_lines_discount_within_price
        CHECK (discount <= quantity::numeric * unit_price)
);

-- Taxes as charged, per line; the shipping's own under line '#shipping'.
CREATE TABLE order_taxes (
    order_id     text NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_id      text NOT NULL CHECK (line_id <> ''),
    position     integer NOT NULL,                         -- the tax's place on its line
    jurisdiction text NOT NULL CHECK (jurisdiction <> ''),
    rate         numeric NOT NULL CHECK (rate >= 0 AND rate <= 1),
    amount       bigint NOT NULL CHECK (amount >= 0),      -- for the whole line
    PRIMARY KEY (order_id, line_id, position)
);

-- Which units of which lines each refund claimed; released_at set when the refund gave them
-- back (rejected, failed, canceled). Rows are kept: they are the history of claims.
CREATE TABLE order_refund_units (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text NOT NULL REFERENCES orders (order_id),
    line_id     text NOT NULL,
    unit_no     integer NOT NULL CHECK (unit_no >= 1),
    refund_id   text NOT NULL CHECK (refund_id <> ''),
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    CONSTRAINT order_refund_units_released_after_claim
        CHECK (released_at IS NULL OR released_at >= claimed_at)
);
CREATE UNIQUE INDEX order_refund_units_held_once
    ON order_refund_units (order_id, line_id, unit_no) WHERE released_at IS NULL;
CREATE INDEX order_refund_units_live_by_refund
    ON order_refund_units (refund_id) WHERE released_at IS NULL;


-- A live unit must exist on its line. FOR SHARE on the line: a concurrent lowering of its
-- quantity waits for this claim to commit, then sees it (and is refused below).
CREATE FUNCTION order_refund_unit_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    line_quantity integer;
BEGIN
    IF NEW.released_at IS NOT NULL AND TG_OP = 'UPDATE' THEN
        RETURN NEW;
    END IF;
    IF NEW.line_id = '#shipping' THEN
        line_quantity := 1;
    ELSE
        SELECT quantity INTO line_quantity FROM order_lines
            WHERE order_id = NEW.order_id AND line_id = NEW.line_id FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % has no line %', NEW.order_id, NEW.line_id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'order_refund_units_within_line';
        END IF;
    END IF;
    IF NEW.unit_no < 1 OR NEW.unit_no > line_quantity THEN
        RAISE EXCEPTION 'line % of order % has % unit(s): there is no unit %',
                NEW.line_id, NEW.order_id, line_quantity, NEW.unit_no
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'order_refund_units_within_line';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_refund_units_within_line
    BEFORE INSERT OR UPDATE ON order_refund_units
    FOR EACH ROW EXECUTE FUNCTION order_refund_unit_exists();


-- The other side of the same rule: a line keeps every unit live refunds hold.
CREATE FUNCTION order_line_keeps_held_units() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    held record;
    kept integer := 0;  -- the units the line keeps: none when it is removed
BEGIN
    IF TG_OP = 'UPDATE' THEN
        kept := NEW.quantity;
    END IF;
    SELECT unit_no, refund_id INTO held FROM order_refund_units
        WHERE order_id = OLD.order_id AND line_id = OLD.line_id AND released_at IS NULL
          AND unit_no > kept
        ORDER BY unit_no DESC LIMIT 1;
    IF FOUND THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'line % of order % cannot be removed: refund % holds its unit %',
                    OLD.line_id, OLD.order_id, held.refund_id, held.unit_no
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'order_refund_units_within_line';
        END IF;
        RAISE EXCEPTION 'line % of order % cannot go down to % unit(s): refund % holds its unit %',
                OLD.line_id, OLD.order_id, NEW.quantity, held.refund_id, held.unit_no
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'order_refund_units_within_line';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_lines_keep_held_units
    BEFORE UPDATE OF quantity OR DELETE ON order_lines
    FOR EACH ROW EXECUTE FUNCTION order_line_keeps_held_units();
