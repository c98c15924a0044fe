//! [`Reason`]: every `google.rpc.ErrorInfo` reason creditgate answers with, closed. It lives
//! beside the declines that produce most of them so that the use cases and the gRPC layer both
//! name it; which status code each one travels with is decided once, in `api::error`.

macro_rules! reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// Every reason.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The reason as sent in ErrorInfo and stored with a declined idempotency record.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// The reason of a wire or stored name; `None` for a name creditgate never sends.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

reasons!(
    /// Why a call failed, as ErrorInfo says it (DESIGN §4).
    Reason {
        /// An amount is malformed, out of bounds, or below the hold it would replace.
        InvalidAmount => "INVALID_AMOUNT",
        /// The usage cannot be priced.
        InvalidUsage => "INVALID_USAGE",
        /// The model is not in the catalog.
        UnknownModel => "UNKNOWN_MODEL",
        /// The tool is not in the catalog.
        UnknownTool => "UNKNOWN_TOOL",
        /// The tool does not allow the model.
        ModelNotAllowed => "MODEL_NOT_ALLOWED",
        /// A request field is malformed, or the database refused one of its values.
        InvalidArgument => "INVALID_ARGUMENT",
        /// No such account for the tenant.
        AccountNotFound => "ACCOUNT_NOT_FOUND",
        /// No such hold for the tenant.
        HoldNotFound => "HOLD_NOT_FOUND",
        /// The quote id is not one this server signed for the tenant.
        QuoteNotFound => "QUOTE_NOT_FOUND",
        /// No such settlement for the tenant.
        SettlementNotFound => "SETTLEMENT_NOT_FOUND",
        /// No such tenant.
        TenantNotFound => "TENANT_NOT_FOUND",
        /// No such catalog version for the tenant.
        CatalogVersionNotFound => "CATALOG_VERSION_NOT_FOUND",
        /// Not enough spendable credits.
        InsufficientCredits => "INSUFFICIENT_CREDITS",
        /// The account owes credits.
        AccountInDebt => "ACCOUNT_IN_DEBT",
        /// The account is suspended or closed.
        AccountSuspended => "ACCOUNT_SUSPENDED",
        /// The hold is no longer active.
        HoldNotActive => "HOLD_NOT_ACTIVE",
        /// The quote expired.
        QuoteExpired => "QUOTE_EXPIRED",
        /// More refunded than was charged.
        RefundExceedsCapture => "REFUND_EXCEEDS_CAPTURE",
        /// Too many partial captures on one hold.
        PartialCaptureLimit => "PARTIAL_CAPTURE_LIMIT",
        /// No catalog version is in effect yet.
        NoActiveCatalog => "NO_ACTIVE_CATALOG",
        /// A spend limit of the hold's member, API key or project would be passed.
        SpendLimitReached => "SPEND_LIMIT_REACHED",
        /// The model needs an entitlement the account lacks.
        EntitlementRequired => "ENTITLEMENT_REQUIRED",
        /// The API key lacks the scope the call needs.
        ScopeMissing => "SCOPE_MISSING",
        /// The idempotency key was used before with another request.
        IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
        /// Something with that name already exists.
        AlreadyExists => "ALREADY_EXISTS",
        /// No such webhook endpoint for the tenant.
        WebhookEndpointNotFound => "WEBHOOK_ENDPOINT_NOT_FOUND",
        /// The tenant has as many webhook endpoints as allowed; delete one first.
        TooManyWebhookEndpoints => "TOO_MANY_WEBHOOK_ENDPOINTS",
        /// As many streams as the server allows are open; retry later.
        TooManyStreams => "TOO_MANY_STREAMS",
        /// The client took nothing from its stream for too long; the stream was ended.
        StreamStalled => "STREAM_STALLED",
        /// Events after the cursor were removed by retention; resume from the oldest kept.
        CursorExpired => "CURSOR_EXPIRED",
        /// The server is shutting down; reconnect (to another replica) and resume.
        ServerDraining => "SERVER_DRAINING",
        /// The RPC is not served by this version.
        NotImplemented => "NOT_IMPLEMENTED",
        /// The database is unavailable.
        Unavailable => "UNAVAILABLE",
        /// A bug or broken invariant.
        Internal => "INTERNAL",
    }
);

impl std::fmt::Display for Reason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Reason;

    #[test]
    fn every_reason_round_trips_through_its_name() {
        for reason in Reason::ALL {
            assert_eq!(Reason::from_name(reason.as_str()), Some(*reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        let names: HashSet<&str> = Reason::ALL.iter().map(|reason| reason.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len(), "two reasons share a name");
    }

    #[test]
    fn a_name_creditgate_never_sends_is_no_reason() {
        for name in ["", "insufficient_credits", "LIMIT_REACHED", "UNKNOWN"] {
            assert_eq!(Reason::from_name(name), None, "{name:?}");
        }
    }
}
