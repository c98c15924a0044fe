//! Pricing, pure: the catalog (models, tools, surcharges, multipliers) and the pricing of a
//! usage estimate into exact line items and a total rounded once, half-even, to 9 places.
//! No I/O; knows nothing of proto or SQL.

mod catalog;
mod price;
mod usage;

pub use catalog::{
    Catalog, CatalogError, ImageRate, Modality, Model, Multiplier, Surcharges, TokenRates, Tool,
    VideoRate,
};
pub use price::{Priced, PricingError, price};
pub use usage::{ImageUsage, Resolution, Usage, UsageError};

#[cfg(test)]
pub(crate) mod hostile;
#[cfg(test)]
mod tests;
