//! Typed ids. Each is a UUID on the wire and in Postgres (transparent to both), but the
//! compiler tells a tenant from an account from a hold, so two ids passed in the wrong order
//! do not compile.

use std::fmt;

use postgres_types::{FromSql, ToSql};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSql, FromSql)]
        #[postgres(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7).
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id a UUID names; the caller says which kind it is.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID behind it.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// A tenant: one platform, with its own accounts, keys and catalog.
    TenantId
);
typed_id!(
    /// An account of a tenant (an organisation or a user).
    AccountId
);
typed_id!(
    /// A hold (one run's reservation).
    HoldId
);
typed_id!(
    /// A grant (one batch of credits with its source, priority and expiry).
    GrantId
);
typed_id!(
    /// A settlement (one capture of a hold, partial or final).
    SettlementId
);

/// An account named with its tenant: the key of every lock and batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The account.
    pub account: AccountId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_shows_and_keeps_its_uuid() {
        let uuid = Uuid::now_v7();
        let hold = HoldId::from_uuid(uuid);
        assert_eq!(hold.uuid(), uuid);
        assert_eq!(hold.to_string(), uuid.to_string());
        assert_ne!(HoldId::now_v7(), HoldId::now_v7());
    }
}
