-- Policy parameters (docs/language.md §3.9): values admins set for the
-- whole fleet (`param_value`) and for one customer (`customer_param`), as
-- JSON of the parameter's type (a string, a number, a bool or an array of
-- strings). Bound by name: a value applies while the served set declares a
-- parameter of that name and type, and is set aside (kept, listed as not
-- applying) otherwise.
CREATE TABLE param_value (
    name        TEXT PRIMARY KEY,
    value       JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE customer_param (
    customer_id  UUID NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value        JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, name)
);
