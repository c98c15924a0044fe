-- Pricing catalogs (immutable versions per tenant), quotes, and the line items of settlements
-- priced from usage.

CREATE TABLE catalog_versions (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    version       bigint NOT NULL CHECK (version > 0),
    effective_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    description   text NOT NULL DEFAULT '',
    document      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
CREATE INDEX catalog_versions_effective_idx ON catalog_versions (tenant_id, effective_at);

CREATE TABLE quotes (
    quote_id              uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL,
    account_id            uuid,
    catalog_version       bigint NOT NULL,
    tool                  text NOT NULL DEFAULT '',
    model                 text NOT NULL DEFAULT '',
    required_entitlement  text,
    total                 numeric(30, 9) NOT NULL CHECK (total >= 0),
    line_items            jsonb NOT NULL,
    expires_at            timestamptz NOT NULL,
    created_at            timestamptz NOT NULL
);
CREATE INDEX quotes_expires_idx ON quotes (expires_at);

ALTER TABLE settlements ADD COLUMN line_items jsonb NOT NULL DEFAULT '[]';
