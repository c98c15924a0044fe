//! Catalog files (TOML, as `creditgate catalog publish` reads them): any text parses or is
//! refused with a `CatalogError`, without a panic; an accepted catalog validates, and its TOML
//! (what `creditgate catalog show` prints) parses back to the same catalog.
#![no_main]

use creditgate::pricing::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match Catalog::from_toml(text) {
        Ok(catalog) => {
            assert_eq!(catalog.validate(), Ok(()));
            let shown = catalog.to_toml();
            assert_eq!(Catalog::from_toml(&shown), Ok(catalog), "shown as {shown}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
