//! Typed ids. Each is a UUID on the wire and in Postgres (transparent to both), but the
//! compiler tells a tenant from an account from a hold, so two ids passed in the wrong order
//! do not compile.

use std::fmt;
use std::str::FromStr;

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

        impl FromStr for $name {
            type Err = uuid::Error;

            /// The id a request names, in any form [`Uuid::parse_str`] reads.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
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
typed_id!(
    /// An allowance (a recurring grant rule of an account).
    AllowanceId
);
typed_id!(
    /// A webhook endpoint of a tenant (a URL its events are POSTed to).
    WebhookEndpointId
);
typed_id!(
    /// A spend limit (a cap on one member, API key or project of an account, per period).
    SpendLimitId
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
        assert_eq!(uuid.to_string().parse::<HoldId>().ok(), Some(hold));
        assert!("not an id".parse::<HoldId>().is_err());
        assert_ne!(HoldId::now_v7(), HoldId::now_v7());
    }

    #[test]
    fn an_id_and_an_array_of_ids_go_to_postgres_as_uuids() {
        use postgres_types::Type;
        assert!(<HoldId as ToSql>::accepts(&Type::UUID));
        assert!(<TenantId as FromSql>::accepts(&Type::UUID));
        assert!(<Vec<HoldId> as ToSql>::accepts(&Type::UUID_ARRAY));
        assert!(<Vec<Option<GrantId>> as ToSql>::accepts(&Type::UUID_ARRAY));
        assert!(!<Vec<AccountId> as ToSql>::accepts(&Type::TEXT_ARRAY));
    }
}
