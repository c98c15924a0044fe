//! What a write statement's column table says, and the macro that declares one: a table names
//! each column once, with its Postgres type and its part in the statement, and from it come
//! the struct holding the rows (one array per column), the parameters in order, and (in
//! [`super::write_sql`]) the statement's column lists and `unnest` casts.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// One column of a write statement, in parameter order (its parameter is `$n` for the `n`th).
#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    /// The column's name, in the table and in the statement.
    pub(super) name: &'static str,
    /// Its Postgres type; the parameter is an array of it.
    pub(super) pg_type: &'static str,
    /// Its part in the statement.
    pub(super) role: Role,
}

/// What a column does in its statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A row's value, written to the column.
    Value,
    /// A row's value naming the row: an upsert's conflict target, an update's match.
    Key,
    /// A row's value that an upsert overwrites when the row exists.
    Updated,
    /// A row's value that an upsert adds to the existing row's (a counter).
    Added,
    /// A row's value that an upsert keeps when later than the existing row's.
    Latest,
    /// One array for every row (not unnested), each row taking the slice between its
    /// [`Role::SliceStart`] and [`Role::SliceEnd`].
    Shared,
    /// A row's first position in the shared arrays (1-based); the shared arrays' columns are
    /// written where it stands.
    SliceStart,
    /// A row's last position in the shared arrays (inclusive).
    SliceEnd,
    /// A row's value the statement uses beside the table (in a `WITH` part), not a column of
    /// it.
    Aside,
}

/// A write statement's columns, and the column (if any) stamped with the transaction's time,
/// whose parameter follows the columns'.
#[derive(Debug, Clone, Copy)]
pub(super) struct Table {
    /// The columns, in parameter order.
    pub(super) columns: &'static [Column],
    /// The column written with the transaction's time, one value for every row.
    pub(super) stamp: Option<&'static str>,
}

impl Table {
    /// Every column with its parameter number.
    pub(super) fn numbered(&self) -> impl Iterator<Item = (usize, &'static Column)> {
        (1..).zip(self.columns)
    }

    /// The columns `unnest` turns into rows (all but the shared arrays), numbered.
    pub(super) fn row_columns(&self) -> impl Iterator<Item = (usize, &'static Column)> {
        self.numbered()
            .filter(|(_, column)| column.role != Role::Shared)
    }

    /// The names of the columns playing `role`.
    pub(super) fn named(&self, role: Role) -> impl Iterator<Item = &'static str> {
        self.columns
            .iter()
            .filter(move |column| column.role == role)
            .map(|column| column.name)
    }

    /// The stamp's parameter number.
    pub(super) fn stamp_param(&self) -> usize {
        self.columns.len() + 1
    }

    /// Whether every row column holds as many values as the first (`lengths` in column order).
    pub(super) fn rows_agree(&self, lengths: &[usize]) -> bool {
        let mut rows = self
            .columns
            .iter()
            .zip(lengths)
            .filter(|(column, _)| column.role != Role::Shared)
            .map(|(_, length)| *length);
        let first = rows.next().unwrap_or_default();
        rows.all(|length| length == first)
    }
}

/// The rows of a write statement, as its parameters.
pub(super) trait WriteRows {
    /// Whether no row was added.
    fn is_empty(&self) -> bool;

    /// The statement's parameters: the columns' arrays in table order, then `now` when the
    /// table is stamped.
    fn params<'a>(&'a self, now: &'a DateTime<Utc>) -> Vec<&'a (dyn ToSql + Sync)>;
}

macro_rules! role {
    () => {
        $crate::store::write_table::Role::Value
    };
    (key) => {
        $crate::store::write_table::Role::Key
    };
    (updated) => {
        $crate::store::write_table::Role::Updated
    };
    (added) => {
        $crate::store::write_table::Role::Added
    };
    (latest) => {
        $crate::store::write_table::Role::Latest
    };
    (shared) => {
        $crate::store::write_table::Role::Shared
    };
    (slice_start) => {
        $crate::store::write_table::Role::SliceStart
    };
    (slice_end) => {
        $crate::store::write_table::Role::SliceEnd
    };
    (aside) => {
        $crate::store::write_table::Role::Aside
    };
}

macro_rules! stamp {
    () => {
        None
    };
    ($stamp:ident) => {
        Some(stringify!($stamp))
    };
}

macro_rules! stamp_param {
    ($stamp:ident, $now:expr) => {
        $now
    };
}

/// Declares a write statement's column table: `Name [stamped column] { [#[role]] column: RustType
/// = "pg_type", ... }` makes the struct `Name` with one `Vec<RustType>` per column (named as the
/// column), `Name::TABLE`, and [`WriteRows`] for it.
macro_rules! write_table {
    (
        $(#[$doc:meta])*
        $name:ident $(stamped $stamp:ident)? {
            $( $(#[$role:ident])? $column:ident: $ty:ty = $pg_type:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub(super) struct $name {
            $( pub(super) $column: Vec<$ty>, )+
        }

        impl $name {
            /// The statement's columns.
            pub(super) const TABLE: $crate::store::write_table::Table =
                $crate::store::write_table::Table {
                    columns: &[$(
                        $crate::store::write_table::Column {
                            name: stringify!($column),
                            pg_type: $pg_type,
                            role: $crate::store::write_table::role!($($role)?),
                        },
                    )+],
                    stamp: $crate::store::write_table::stamp!($($stamp)?),
                };
        }

        impl $crate::store::write_table::WriteRows for $name {
            fn is_empty(&self) -> bool {
                $( self.$column.is_empty() )&&+
            }

            fn params<'a>(
                &'a self,
                now: &'a ::chrono::DateTime<::chrono::Utc>,
            ) -> Vec<&'a (dyn ::tokio_postgres::types::ToSql + Sync)> {
                debug_assert!(
                    Self::TABLE.rows_agree(&[$( self.$column.len() ),+]),
                    "every row column of {} has a value per row",
                    stringify!($name),
                );
                let _ = now;
                vec![$( &self.$column, )+ $( $crate::store::write_table::stamp_param!($stamp, now), )?]
            }
        }
    };
}

pub(super) use {role, stamp, stamp_param, write_table};
