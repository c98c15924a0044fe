//! Times on the wire and the server's clock.

use chrono::{DateTime, TimeZone as _, Utc};
use creditgate::clock::Clock as _;

use super::TestApp;

/// `time` as the wire carries it.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    }
}

/// A wire timestamp as a time.
pub fn time(timestamp: &prost_types::Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(timestamp.seconds, u32::try_from(timestamp.nanos).unwrap())
        .single()
        .unwrap()
}

impl TestApp {
    /// The server's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
