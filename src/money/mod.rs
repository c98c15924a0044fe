//! Money, below everything that counts it: the exact credit amount, how amounts are parsed from
//! text, and the line items that explain a priced amount. Pure; no I/O.

mod amount;
mod line_item;

pub use amount::{AmountError, Credits, MAX_DECIMAL_PLACES, parse_amount};
pub use line_item::LineItem;
