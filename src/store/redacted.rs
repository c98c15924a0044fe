//! Secret bytes as query parameters. tokio-postgres logs every parameter's `Debug` form at
//! debug level; key digests identify their keys and signing secrets forge quotes, so these
//! print nothing of their bytes.

use std::error::Error;
use std::fmt;

use prost::bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Bytes sent as a `bytea` parameter and shown as `Redacted(..)`.
pub(super) struct Redacted<'a>(pub &'a [u8]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Redacted(..)")
    }
}

impl ToSql for Redacted<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&[u8] as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_parameter_shows_nothing_of_its_bytes() {
        let shown = format!("{:?}", Redacted(&[0xab; 32]));
        assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
    }
}
